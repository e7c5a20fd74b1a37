"""Migrated databases for tests, made by copying instead of migrating (fixtures in
tests/conftest.py use these).

Alembic replaying every migration cost each test about 0.1 s on SQLite and more on
PostgreSQL. So each pytest process migrates once, with alembic as before, and every test
gets a copy of that result: SQLite copies the migrated file, PostgreSQL clones the migrated
database (`CREATE DATABASE ... TEMPLATE`, a file copy in the server). The templates live
only as long as the pytest process, so a changed migration is picked up by the next run.

Dropping a PostgreSQL database waits for the server's disk (0.15 to 0.9 s measured on a busy
2-core machine, nearly all of it waiting), and so does cloning one (0.05 to 0.2 s): both are
sent without waiting for the answer. A DROP finishes while the next tests run (at most
DROP_SLOTS pending); the next test's clone is made while this test runs.

Databases are named scanner_test_<host>_<pid>_<random>; a run that was killed leaves some
behind, and the next run on the same host drops those whose process is gone (databases of
other pytest processes running at the same time are never touched)."""

from __future__ import annotations

import atexit
import hashlib
import os
import re
import shutil
import socket
import sqlite3
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from psycopg.pq.abc import PGconn

HOST_TAG = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]
PREFIX = f"scanner_test_{HOST_TAG}_{os.getpid()}_"
_OURS = re.compile(rf"^scanner_test_{HOST_TAG}_(\d+)_[a-z0-9]+$")
# Pending DROPs before a test's tear-down waits for the oldest: bounds the databases (about
# 8 MB each) the server holds at once.
DROP_SLOTS = 4


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def _remove_in(pid: int, folder: Path) -> None:
    # A forked child that exits normally runs atexit too: only the maker removes the folder.
    if os.getpid() == pid:
        shutil.rmtree(folder, ignore_errors=True)


class SqliteTemplate:
    """One migrated SQLite file per pytest process, copied into each test's data dir."""

    def __init__(self, migrate: Callable[[Path], str]) -> None:
        # migrate(data_dir) builds a migrated station database there and returns its file.
        self._migrate = migrate
        self._file: Path | None = None

    def file(self) -> Path:
        if self._file is None:
            folder = Path(tempfile.mkdtemp(prefix="scanner-test-template-"))
            atexit.register(_remove_in, os.getpid(), folder)
            path = Path(self._migrate(folder / "data"))
            # Fold the WAL into the file, so the one file is the whole database.
            conn = sqlite3.connect(path)
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.close()
            assert not path.with_name(path.name + "-wal").exists(), "template WAL left open"
            self._file = path
        return self._file

    def copy_to(self, target: Path) -> None:
        """Fill `target` (missing, or empty as the station creates it) with the migrated
        database. The file keeps the mode it has (the station creates it 0600)."""
        shutil.copyfile(self.file(), target)


class PostgresTemplates:
    """The migrated template database of this pytest process, its clones, and their drops."""

    def __init__(self, admin_url: str, migrate: Callable[[str], None]) -> None:
        # migrate(url) migrates the empty database at `url` and closes every connection to it.
        self._admin_url = sa.engine.make_url(admin_url)
        self._migrate = migrate
        self._engine = sa.create_engine(self._admin_url, isolation_level="AUTOCOMMIT",
                                        poolclass=NullPool)  # no socket outlives a call
        self._template: str | None = None
        self._pending: list[tuple[PGconn, str]] = []  # (connection, database), oldest first
        self._idle: list[PGconn] = []
        self._next: tuple[PGconn, str] | None = None  # the clone being made for the next test
        self._creator: PGconn | None = None
        self.errors: list[str] = []

    def url_of(self, name: str) -> str:
        return self._admin_url.set(database=name).render_as_string(hide_password=False)

    def _execute(self, sql: str) -> None:
        with self._engine.connect() as conn:
            conn.execute(sa.text(sql))

    def empty(self) -> str:
        """A new, empty database (CREATE DATABASE as a station's administrator would)."""
        name = f"{PREFIX}{uuid.uuid4().hex[:8]}"
        self._execute(f'CREATE DATABASE "{name}"')
        return name

    def migrated(self) -> str:
        """A new database that is a copy of the migrated template. The next one is cloned
        while the test that gets this one runs."""
        from psycopg import OperationalError

        if self._template is None:
            self.drop_leftovers()
            template = self.empty()
            self._migrate(self.url_of(template))
            # Nobody may connect to a template while it is cloned; this keeps everyone out.
            self._execute(f'ALTER DATABASE "{template}" WITH ALLOW_CONNECTIONS false')
            self._template = template
        if self._next is None:
            self._clone_later()
        conn, name = self._next
        self._next = None
        error = _wait_for(conn)
        if error is not None:
            conn.finish()
            raise RuntimeError(f"Could not copy the test database template: {error}")
        self._creator = conn
        try:
            self._clone_later()
        except OperationalError:
            self._next = None  # the next test clones its own, and says what failed
        return name

    def _connect(self) -> PGconn:
        from psycopg import OperationalError, pq

        libpq_url = self._admin_url.set(drivername="postgresql")
        conn = pq.PGconn.connect(libpq_url.render_as_string(hide_password=False).encode())
        if conn.status != pq.ConnStatus.OK:
            message = conn.get_error_message()
            conn.finish()
            raise OperationalError(message)
        return conn

    def _clone_later(self) -> None:
        """Send the CREATE of the next clone and return at once."""
        conn, self._creator = self._creator or self._connect(), None
        name = f"{PREFIX}{uuid.uuid4().hex[:8]}"
        conn.send_query(f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"'.encode())
        self._next = (conn, name)

    def drop_leftovers(self) -> None:
        """Databases of earlier runs on this host whose pytest process is gone."""
        with self._engine.connect() as conn:
            names = conn.execute(sa.text(
                "SELECT datname FROM pg_database WHERE datname LIKE 'scanner\\_test\\_%'"
            )).scalars().all()
        for name in names:
            found = _OURS.match(name)
            if found and int(found.group(1)) != os.getpid() and not _pid_alive(
                    int(found.group(1))):
                self.drop_later(name)

    def drop_later(self, name: str) -> None:
        """Send DROP DATABASE and return at once; the answer is read later (see reap)."""
        from psycopg import OperationalError

        self.reap(wait=len(self._pending) >= DROP_SLOTS)
        conn = self._idle.pop() if self._idle else None
        try:
            if conn is None:
                conn = self._connect()
            conn.send_query(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
        except OperationalError as exc:
            self.errors.append(f"Could not drop the test database {name}: {exc}")
            if conn is not None:
                conn.finish()
            return
        self._pending.append((conn, name))

    def reap(self, wait: bool = False) -> None:
        """Read the answers of finished DROPs; with `wait`, wait for the oldest one too."""
        from psycopg import OperationalError

        still: list[tuple[PGconn, str]] = []
        for index, (conn, name) in enumerate(self._pending):
            try:
                if not (wait and index == 0):
                    conn.consume_input()
                    if conn.is_busy():
                        still.append((conn, name))
                        continue
                error = _wait_for(conn)
            except OperationalError as exc:
                error = str(exc)
            if error is None:
                self._idle.append(conn)
            else:
                self.errors.append(f"Could not drop the test database {name}: {error}")
                conn.finish()
        self._pending = still

    def close(self) -> None:
        """Finish every pending clone and drop, drop the template, close every connection."""
        if self._next is not None:
            conn, name = self._next
            self._next = None
            if _wait_for(conn) is None:
                self.drop_later(name)
            conn.finish()
        while self._pending:
            self.reap(wait=True)
        if self._template is not None:
            self._execute(f'DROP DATABASE IF EXISTS "{self._template}" WITH (FORCE)')
            self._template = None
        for conn in [*self._idle, *([self._creator] if self._creator else [])]:
            conn.finish()
        self._idle.clear()
        self._creator = None
        self._engine.dispose()


def _wait_for(conn: PGconn) -> str | None:
    """Wait for the answer to the command sent on `conn`: None when it succeeded, else the
    server's message."""
    from psycopg import pq

    error = None
    while (result := conn.get_result()) is not None:
        if result.status != pq.ExecStatus.COMMAND_OK:
            error = result.get_error_message()
    return error
