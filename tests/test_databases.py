"""Each test's database is a copy of one migrated template (tests/databases.py). A copy must
be exactly what alembic builds, private, and the test's own; a clone's DROP, sent without
waiting, must still happen, with few pending at once; a killed run's databases are dropped by
the next run, and those of a run still going are not."""

from __future__ import annotations

import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from scanner_app.accounts.service import create_api_key
from scanner_app.models import ApiKey
from scanner_app.platform.extensions import db
from scanner_app.runtime.schema_state import head_revisions, sqlite_path
from tests.conftest import (
    PG_ADMIN_URL,
    SQLITE_TEMPLATE,
    _alembic_app,
    _migrate_database,
    build_app,
)
from tests.databases import DROP_SLOTS, HOST_TAG, PostgresTemplates
from tests.models.test_migration_chain import schema_snapshot
from tests.support import dispose, station_env

pg = pytest.mark.postgres


def snapshot(app) -> dict[str, Any]:
    """Schema, alembic_version and the number of rows of every table."""
    with app.app_context(), db.engine.connect() as conn:
        tables = sorted(sa.inspect(conn).get_table_names())
        return {
            "schema": schema_snapshot(conn),
            "version": set(conn.exec_driver_sql("SELECT version_num FROM alembic_version")
                           .scalars()),
            "rows": {t: conn.exec_driver_sql(f'SELECT count(*) FROM "{t}"').scalar_one()
                     for t in tables},
        }


def key_count(app) -> int:
    with app.app_context():
        return db.session.query(ApiKey).count()


def test_a_sqlite_copy_is_what_alembic_builds_private_and_its_own(tmp_path: Path) -> None:
    from scanner_app.config import load_settings

    first, second = build_app(tmp_path / "a" / "data"), build_app(tmp_path / "b" / "data")
    migrated = _alembic_app(load_settings(env=station_env(tmp_path / "alembic" / "data")))
    try:
        assert snapshot(first) == snapshot(migrated)
        assert snapshot(first)["version"] == head_revisions()
        path = sqlite_path(first.config["SQLALCHEMY_DATABASE_URI"])
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

        with first.app_context():
            create_api_key("only in the first")
        assert (key_count(first), key_count(second)) == (1, 0)
    finally:
        for app in (first, second, migrated):
            dispose(app)


def test_a_new_database_is_copied_not_migrated(database_url: str, data_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    SQLITE_TEMPLATE.file()  # this process's template exists (the PostgreSQL one does already)

    def no_alembic(*args: object, **kwargs: object) -> None:
        raise AssertionError("alembic ran for a database that should have been a copy")

    monkeypatch.setattr("flask_migrate.upgrade", no_alembic)
    app = build_app(data_dir, database_url)
    try:
        assert snapshot(app)["version"] == head_revisions()
    finally:
        dispose(app)


def test_an_existing_sqlite_database_is_not_replaced(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    app = build_app(data_dir)
    with app.app_context():
        create_api_key("kept")
    dispose(app)
    again = build_app(data_dir)
    assert key_count(again) == 1
    dispose(again)


@pg
def test_a_postgres_clone_is_what_alembic_builds_and_its_own(
        pg_database_url: str, empty_pg_database_url: str, pg_templates: PostgresTemplates,
        tmp_path: Path) -> None:
    other = pg_templates.url_of(pg_templates.migrated())
    clone = build_app(tmp_path / "a", pg_database_url)
    second = build_app(tmp_path / "b", other)
    migrated = build_app(tmp_path / "c", empty_pg_database_url)  # not at head: alembic runs
    try:
        assert snapshot(migrated)["version"] == head_revisions()
        assert snapshot(clone) == snapshot(migrated)
        with clone.app_context():
            create_api_key("only in the clone")
        assert (key_count(clone), key_count(second)) == (1, 0)
    finally:
        for app in (clone, second, migrated):
            dispose(app)
        pg_templates.drop_later(sa.engine.make_url(other).database)


def database_names() -> set[str]:
    engine = sa.create_engine(PG_ADMIN_URL)
    try:
        with engine.connect() as conn:
            return set(conn.exec_driver_sql("SELECT datname FROM pg_database").scalars())
    finally:
        engine.dispose()


@pg
def test_drops_happen_later_with_few_pending(pg_templates: PostgresTemplates) -> None:
    names = [pg_templates.migrated() for _ in range(DROP_SLOTS + 2)]
    assert set(names) <= database_names()
    for name in names:
        pg_templates.drop_later(name)
        assert len(pg_templates._pending) <= DROP_SLOTS
    while pg_templates._pending:
        pg_templates.reap(wait=True)
    assert not set(names) & database_names()
    assert pg_templates.errors == []


@pg
def test_a_killed_runs_databases_are_dropped_and_a_live_runs_kept(
        pg_templates: PostgresTemplates) -> None:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(done.stdout)  # that process has exited
    live = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                            stdin=subprocess.PIPE)
    dead_name = f"scanner_test_{HOST_TAG}_{dead_pid}_{uuid.uuid4().hex[:8]}"
    live_name = f"scanner_test_{HOST_TAG}_{live.pid}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for name in (dead_name, live_name):
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        next_run = PostgresTemplates(PG_ADMIN_URL, _migrate_database)
        next_run.drop_leftovers()
        next_run.close()  # waits for its drops
        assert next_run.errors == []
        names = database_names()
        assert dead_name not in names
        assert live_name in names
    finally:
        live.communicate(b"")
        with admin.connect() as conn:
            for name in (dead_name, live_name):
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pg
def test_a_finished_run_leaves_no_database(pg_templates: PostgresTemplates) -> None:
    run = PostgresTemplates(PG_ADMIN_URL, _migrate_database)
    used = [run.migrated(), run.migrated()]
    assert run._next is not None  # the next clone is on its way
    made = {*used, run._template, run._next[1]}
    assert {*used, run._template} <= database_names()
    for name in used:
        run.drop_later(name)
    run.close()
    assert run.errors == []
    assert not made & database_names()
