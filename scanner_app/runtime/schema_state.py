"""The station's database before anything starts: already at the newest migration, new and
empty, or for alembic to migrate.

- is_up_to_date: answered without Flask, SQLAlchemy or alembic (the standard library's
  sqlite3 and the migration files), so restarting a station whose SQLite database is up to
  date costs nothing. Any other database, or any doubt, is not a clear yes.
- prepare_database: also creates a NEW, EMPTY database from the models' metadata, stamped at
  the alembic head, in one transaction (about a second less than alembic replaying every
  migration in a `scanner db upgrade` process); an existing one is left to alembic.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from scanner_app.config import Settings

VERSIONS_DIR = Path(__file__).resolve().parent.parent / "migrations" / "versions"
_REVISION = re.compile(r"^revision\s*(?::\s*str)?\s*=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN = re.compile(r"^down_revision\s*(?::[^=]*)?=\s*(.+)$", re.M)
_QUOTED = re.compile(r"['\"]([^'\"]+)['\"]")


def head_revisions(versions_dir: Path = VERSIONS_DIR) -> set[str]:
    """The revisions no other migration builds on (one, unless the chain has branched)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in versions_dir.glob("*.py"):
        text = script.read_text(encoding="utf-8")
        found = _REVISION.search(text)
        if found is None:
            continue
        revisions.add(found.group(1))
        down = _DOWN.search(text)
        if down is not None:
            parents.update(_QUOTED.findall(down.group(1)))
    return revisions - parents


def sqlite_path(database_url: str) -> Path | None:
    """The file of a sqlite:/// URL (None for anything else, or an in-memory database)."""
    if not database_url.startswith("sqlite"):
        return None
    parts = urlsplit(database_url)
    path = unquote(parts.path)
    if parts.netloc or not path or path == "/" or ":memory:" in path:
        return None
    # sqlite:///relative/file -> "/relative/file"; sqlite:////abs/file -> "//abs/file"
    return Path(path[1:])


def is_up_to_date(database_url: str) -> bool:
    """True only when the database is a SQLite file whose alembic_version is the one head."""
    path = sqlite_path(database_url)
    heads = head_revisions()
    if path is None or len(heads) != 1 or not path.is_file():
        return False
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return {row[0] for row in rows} == heads


# What prepare_database did (or leaves to its caller).
UP_TO_DATE = "up to date"
CREATED = "created"
NEEDS_MIGRATION = "needs migration"

# Any fixed number: PostgreSQL's advisory lock serialises two stations creating one schema.
_PG_LOCK_KEY = 0x5CA11E5


def prepare_database(settings: Settings) -> str:
    """Make the station's database ready to start on, the cheap way when there is one.

    - UP_TO_DATE: a SQLite file already at the head (read with sqlite3 alone).
    - CREATED: the database had no tables at all; the models' schema was created and the
      alembic head stamped in one transaction (tens of milliseconds, against about a second
      for alembic replaying every migration; tests/models/test_fresh_schema.py proves both
      give the same schema and rows).
    - NEEDS_MIGRATION: an existing database (or one that alembic must judge): the caller runs
      `scanner db upgrade` as before, so existing stations keep alembic's path.

    Loads SQLAlchemy and the models, never alembic; the engine it makes is disposed before it
    returns, so no connection outlives the call (a preloaded parent may fork afterwards)."""
    if is_up_to_date(settings.database_url):
        return UP_TO_DATE
    heads = head_revisions()
    if len(heads) != 1:
        return NEEDS_MIGRATION
    from scanner_app.platform.database import engine_for

    engine = engine_for(settings)
    try:
        created = _create_if_empty(engine, next(iter(heads)))
    finally:
        engine.dispose()
    return CREATED if created else NEEDS_MIGRATION


def _create_if_empty(engine: Engine, head: str) -> bool:
    import sqlalchemy as sa

    import scanner_app.models  # noqa: F401 - registers every table on db.metadata
    from scanner_app.platform.extensions import db

    if engine.dialect.name not in ("sqlite", "postgresql"):
        return False
    with engine.connect() as connection, _locked_transaction(connection):
        if sa.inspect(connection).get_table_names():
            return False  # rolled back: nothing was written
        db.metadata.create_all(connection)
        # Alembic's own table, as alembic creates it, holding the head it would reach.
        connection.exec_driver_sql(
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
            "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
        )
        connection.execute(sa.text("INSERT INTO alembic_version (version_num) VALUES (:v)"),
                           {"v": head})
        connection.info["schema_created"] = True
    return True


@contextmanager
def _locked_transaction(connection: Connection) -> Iterator[None]:
    """One transaction holding the database's write lock from before the emptiness check,
    so of two creators racing, the second waits and then finds the tables. Committed only
    when something was created; otherwise (or on any error) rolled back."""
    import sqlalchemy as sa

    if connection.dialect.name == "sqlite":
        # The driver's own BEGIN handling off, so BEGIN IMMEDIATE takes the lock up front.
        connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            connection.exec_driver_sql("ROLLBACK")
            raise
        connection.exec_driver_sql("COMMIT" if connection.info.pop("schema_created", False)
                                   else "ROLLBACK")
        return
    transaction = connection.begin()
    try:
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        yield
    except BaseException:
        transaction.rollback()
        raise
    if connection.info.pop("schema_created", False):
        transaction.commit()
    else:
        transaction.rollback()
