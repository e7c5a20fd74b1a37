"""Shared fixtures: a station app on a real SQLite file or a real PostgreSQL database (or on
SQLite only, for tests that do not depend on the database), an authenticated API client, and
a private real Redis server. Plain helpers are in tests/support.py.

PostgreSQL: SCANNER_TEST_PG_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test).
Each test gets a database of its own, created and dropped here. Outside CI an unreachable
server skips those tests with the reason printed; in CI (CI=true) it fails them.

Migrations run once per pytest process; each test's database is a copy of that migrated one
(tests/databases.py). Tests of migrating itself ask for `empty_database_url`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from scanner_app import create_app
from scanner_app.config import load_settings
from scanner_app.platform.database import prepare_data_dir
from scanner_app.runtime import schema_state
from tests.csrf_client import CsrfClient
from tests.databases import PostgresTemplates, SqliteTemplate
from tests.support import api_client, dispose, free_port, station_env

if TYPE_CHECKING:
    from flask import Flask

    from scanner_app.config import Settings

PG_ADMIN_URL = os.environ.get(
    "SCANNER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_postgres() -> None:
    """Skip (outside CI) or fail (in CI) when the PostgreSQL server is unreachable."""
    try:
        engine = sa.create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means "no server"
        reason = f"PostgreSQL at {PG_ADMIN_URL} is unreachable ({type(exc).__name__}: {exc})"
        if IN_CI:
            pytest.fail(reason + "; CI must run the PostgreSQL tests.")
        print(f"\nSKIP: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_templates() -> Iterator[PostgresTemplates]:
    """This pytest process's migrated PostgreSQL template and the drops of its clones."""
    require_postgres()
    templates = PostgresTemplates(PG_ADMIN_URL, _migrate_database)
    yield templates
    templates.close()
    for error in templates.errors:
        warnings.warn(error, stacklevel=1)


@pytest.fixture
def pg_database_url(pg_templates: PostgresTemplates) -> Iterator[str]:
    """A migrated PostgreSQL database of this test's own (a clone of the template)."""
    name = pg_templates.migrated()
    yield pg_templates.url_of(name)
    pg_templates.drop_later(name)


@pytest.fixture
def empty_pg_database_url(pg_templates: PostgresTemplates) -> Iterator[str]:
    """A new, empty PostgreSQL database of this test's own (for tests of migrating)."""
    name = pg_templates.empty()
    yield pg_templates.url_of(name)
    pg_templates.drop_later(name)


def _alembic_app(settings: Settings) -> Flask:
    """A station app whose database alembic has migrated, as `scanner db upgrade` does."""
    from flask_migrate import upgrade

    app = create_app(settings, overrides={"TESTING": True})
    app.test_client_class = CsrfClient  # forms carry the page's CSRF token, as in a browser
    with app.app_context():
        upgrade()
    return app


def _migrate_database(database_url: str) -> None:
    folder = Path(tempfile.mkdtemp(prefix="scanner-test-pg-template-"))
    try:
        dispose(_alembic_app(load_settings(env=station_env(
            folder, SCANNER_DATABASE_URL=database_url))))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _migrate_sqlite(data_dir: Path) -> Path:
    settings = load_settings(env=station_env(data_dir))
    dispose(_alembic_app(settings))
    return schema_state.sqlite_path(settings.database_url)


SQLITE_TEMPLATE = SqliteTemplate(_migrate_sqlite)


def _at_head(app: Flask) -> bool:
    """The database is at the newest migration (alembic's upgrade would do nothing)."""
    from scanner_app.platform.extensions import db

    with app.app_context():
        try:
            with db.engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                versions = set(rows.scalars())
        except sa.exc.DBAPIError:
            return False  # no alembic_version table: alembic decides
    return versions == schema_state.head_revisions()


def build_app(data_dir: Path, database_url: str | None = None, **env: str) -> Flask:
    """A migrated station app for tests. A SQLite file that does not exist yet (or is empty)
    becomes a copy of this process's migrated template; a database already at the newest
    migration is used as it is; any other is migrated by alembic."""
    extra = {"SCANNER_DATABASE_URL": database_url} if database_url else {}
    settings = load_settings(env=station_env(data_dir, **extra, **env))
    path = schema_state.sqlite_path(settings.database_url)
    if path is not None and (not path.exists() or path.stat().st_size == 0):
        prepare_data_dir(settings)  # the data dir 0700 and the file 0600, as a station's
        if path.is_file():
            SQLITE_TEMPLATE.copy_to(path)
    app = create_app(settings, overrides={"TESTING": True})
    app.test_client_class = CsrfClient  # forms carry the page's CSRF token, as in a browser
    if not _at_head(app):
        from flask_migrate import upgrade

        with app.app_context():
            upgrade()
    return app


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path: Path) -> str:
    """The test's own database: SQLite (a file build_app fills from the migrated template)
    or PostgreSQL (already migrated)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'scanner.db'}"
    return request.getfixturevalue("pg_database_url")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request, tmp_path: Path) -> str:
    """The test's own database, empty (no file yet on SQLite), for tests of migrating."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'scanner.db'}"
    return request.getfixturevalue("empty_pg_database_url")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def app(data_dir: Path, database_url: str):
    app = build_app(data_dir, database_url)
    yield app
    dispose(app)


@pytest.fixture
def api_key(app) -> str:
    from scanner_app.accounts.service import create_api_key

    with app.app_context():
        return create_api_key("tests")


@pytest.fixture
def client(app, api_key):
    """A test client that sends a valid X-Api-Key on every request."""
    client = app.test_client()
    client.environ_base["HTTP_X_API_KEY"] = api_key
    return client


@pytest.fixture
def sqlite_app(data_dir: Path):
    """A migrated app on SQLite only, for checks that do not depend on the database."""
    app = build_app(data_dir)
    yield app
    dispose(app)


@pytest.fixture
def sqlite_client(sqlite_app):
    """A test client of `sqlite_app` that sends a valid X-Api-Key on every request."""
    return api_client(sqlite_app)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[str]:
    """A private, real redis-server for the test session (so the suite neither needs nor
    disturbs the machine's own Redis). Yields its redis:// URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed; run 'make test' (it installs it).")
    workdir = tmp_path_factory.mktemp("redis")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("the private redis-server for the tests did not start")
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def private_redis(data_dir: Path):
    """The station's private Redis on <data_dir>/redis.sock (what `scanner run` starts)."""
    from scanner_app.runtime.redis_server import PrivateRedis

    with PrivateRedis(data_dir) as server:
        yield server
