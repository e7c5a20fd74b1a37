"""Shared fixtures: a station app on a real SQLite file or a real PostgreSQL database (or on
SQLite only, for tests that do not depend on the database), an authenticated API client, and
a private real Redis server. Plain helpers are in tests/support.py.

PostgreSQL: SCANNER_TEST_PG_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test).
Each test gets a database of its own, created and dropped here. Outside CI an unreachable
server skips those tests with the reason printed; in CI (CI=true) it fails them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from scanner_app import create_app
from scanner_app.config import load_settings
from tests.csrf_client import CsrfClient
from tests.support import api_client, dispose, free_port, station_env

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


@pytest.fixture
def pg_database_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    require_postgres()
    name = f"scanner_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def build_app(data_dir: Path, database_url: str | None = None, **env: str):
    """A migrated station app for tests."""
    from flask_migrate import upgrade

    extra = {"SCANNER_DATABASE_URL": database_url} if database_url else {}
    settings = load_settings(env=station_env(data_dir, **extra, **env))
    app = create_app(settings, overrides={"TESTING": True})
    app.test_client_class = CsrfClient  # forms carry the page's CSRF token, as in a browser
    with app.app_context():
        upgrade()
    return app


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'scanner.db'}"
    return request.getfixturevalue("pg_database_url")


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
