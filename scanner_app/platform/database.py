"""The station's database connections, configured the same way wherever they are made: by
the app (Flask-SQLAlchemy) and by work done before or without an app (a new database's
schema, runtime/schema_state.py). SQLite pragmas on every new connection, a ping only for
connections idle a while, the SQLite file private to the station's user.

Imports only the standard library at module level: `scanner run`'s supervisor may import it
before deciding whether SQLAlchemy is needed at all."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from scanner_app.config import Settings


def owner_only(path: Path) -> None:
    """Secrets, password hashes, the database: readable by the station's user alone (0600)."""
    if path.exists() and path.stat().st_mode & 0o077:
        path.chmod(0o600)


def private_sqlite_file(database_url: str) -> None:
    """Create the SQLite file with mode 0600 before SQLite does (it would use the umask,
    usually 0644); its -wal and -shm files copy the database file's mode."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    path = Path(url.database)
    if path.parent.is_dir():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
        owner_only(path.with_name(name))


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets readers work while a writer commits; busy_timeout makes racing writers wait
    # instead of failing; foreign_keys makes ON DELETE rules real.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


_ENGINE_EVENTS: list[bool] = []


def _listen_to_engines() -> None:
    """Once per process: SQLite pragmas on every new connection; connections idle for a while
    pinged at checkout (see _ping_if_idle)."""
    if _ENGINE_EVENTS:
        return
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import Pool

    event.listen(Engine, "connect", _sqlite_pragmas)
    event.listen(Pool, "checkin", _note_checkin)
    event.listen(Pool, "checkout", _ping_if_idle)
    _ENGINE_EVENTS.append(True)


# A pooled connection idle longer than this is pinged before use. pool_pre_ping pinged on every
# checkout, a round trip per request and per resolver call (issue 15); a connection in
# steady use is trusted, and one that fails anyway is invalidated by SQLAlchemy on the error
# (the pool then reconnects for the next request).
IDLE_PING_SECONDS = 30.0


def _note_checkin(_dbapi_connection, record) -> None:
    import time

    record.info["checked_in_at"] = time.monotonic()


def _ping_if_idle(dbapi_connection, record, _proxy) -> None:
    import time

    if type(dbapi_connection).__module__.startswith("sqlite3"):
        return  # a file, not a server: nothing to lose
    idle_since = record.info.get("checked_in_at")
    if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
        return
    from sqlalchemy.exc import DisconnectionError

    try:
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT 1")
        cursor.close()
        dbapi_connection.rollback()
    except Exception as exc:  # noqa: BLE001 - any failure: the pool retries with a new one
        raise DisconnectionError(str(exc)) from exc


def prepare_data_dir(settings: Settings) -> None:
    """The data dir (0700 when new), its sessions folder, and a private SQLite file; the
    engine events every connection needs, once per process."""
    _listen_to_engines()
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.sessions_dir.mkdir(parents=True, exist_ok=True)
    private_sqlite_file(settings.database_url)


def engine_options(settings: Settings) -> dict[str, object]:
    if settings.database_url.startswith("sqlite"):
        # The SQLite file is shared by web threads, workers and the button daemon.
        return {"connect_args": {"timeout": 30}}
    return {}


def engine_for(settings: Settings) -> Engine:
    """An engine on the station's database configured as the app's own is (pragmas, idle
    pings, private SQLite file), for work done before or without an app (schema creation)."""
    from sqlalchemy import create_engine

    prepare_data_dir(settings)
    return create_engine(settings.database_url, **engine_options(settings))


