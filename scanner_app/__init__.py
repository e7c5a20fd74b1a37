"""The scanning station's Flask application factory.

Importing this package loads nothing but the standard library: the processes that never build
the app (`scanner run`'s supervisor, the button daemon) import scanner_app.config and friends
without Flask, SQLAlchemy or alembic coming along (issue 15: lean processes)."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy import Engine

    from scanner_app.config import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _secret_key(data_dir: Path) -> str:
    """A per-station secret kept in the data dir (mode 0600), so logins survive restarts.
    Created with os.link, which refuses an existing name: processes starting together (web,
    worker) all end up reading the one that was linked first."""
    path = data_dir / "secret_key"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(prefix=".secret_key.", dir=data_dir)  # mode 0600
        try:
            os.write(fd, secrets.token_hex(32).encode())
            os.fsync(fd)
            os.close(fd)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    _owner_only(path)
    return path.read_text().strip()


def _owner_only(path: Path) -> None:
    """Secrets and password hashes: readable by the station's user alone (0600)."""
    if path.exists() and path.stat().st_mode & 0o077:
        path.chmod(0o600)


def _private_sqlite_file(database_url: str) -> None:
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
        _owner_only(path.with_name(name))


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


def _prepare_data_dir(settings: Settings) -> None:
    """The data dir (0700 when new), its sessions folder, and a private SQLite file; the
    engine events every connection needs, once per process."""
    _listen_to_engines()
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.sessions_dir.mkdir(parents=True, exist_ok=True)
    _private_sqlite_file(settings.database_url)


def _engine_options(settings: Settings) -> dict[str, object]:
    if settings.database_url.startswith("sqlite"):
        # The SQLite file is shared by web threads, workers and the button daemon.
        return {"connect_args": {"timeout": 30}}
    return {}


def engine_for(settings: Settings) -> Engine:
    """An engine on the station's database configured as the app's own is (pragmas, idle
    pings, private SQLite file), for work done before or without an app (schema creation)."""
    from sqlalchemy import create_engine

    _prepare_data_dir(settings)
    return create_engine(settings.database_url, **_engine_options(settings))


def create_app(
    settings: Settings | None = None, overrides: Mapping[str, object] | None = None
) -> Flask:
    from flask import Flask

    from scanner_app.config import PROJECT_ROOT, load_settings
    from scanner_app.platform.extensions import LazyMigrate, db, htmx

    settings = settings or load_settings()
    _prepare_data_dir(settings)

    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.update(
        SCANNER_SETTINGS=settings,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings),
        MAX_CONTENT_LENGTH=settings.max_upload_mb * 1024 * 1024,
        SECRET_KEY=_secret_key(settings.data_dir),
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
    )
    if overrides:
        app.config.update(overrides)

    db.init_app(app)
    LazyMigrate(app, str(MIGRATIONS_DIR))  # alembic loads only if something migrates
    htmx.init_app(app)

    from scanner_app.accounts.auth import init_auth
    from scanner_app.blueprints import register_blueprints
    from scanner_app.platform.errors import register_error_handlers
    from scanner_app.platform.web.converters import init_converters
    from scanner_app.platform.web.security import init_security

    register_error_handlers(app)
    init_converters(app)  # before any route is added: ids are bounded ASCII digits
    init_auth(app)
    init_security(app)  # CSRF after the login check; headers on every response
    register_blueprints(app)

    from scanner_app.cli import register_app_commands

    register_app_commands(app)

    if not logging.getLogger().handlers:
        # CLI processes (web, worker, button) log the station's INFO lines, e.g. the
        # resolver's "reused/created session N"; a host that configured logging keeps its own.
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    return app
