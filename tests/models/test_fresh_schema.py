"""A new, empty database is created from the models' metadata and stamped at the alembic head
in one transaction (runtime/schema_state.prepare_database), instead of alembic replaying the
whole chain. The result must be exactly what the migration chain gives: the same reflected
schema (types, defaults, keys, partial and expression indexes, checks, AUTOINCREMENT), the
same index definitions, the same rows in every table, the same alembic_version. Only the
order of columns that later migrations added differs (alembic appends them; the models
declare them where they belong): nothing in the station reads columns by position. An existing
database is left to alembic, and a failed creation leaves nothing behind."""

from __future__ import annotations

import re
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from scanner_app import create_app
from scanner_app.config import Settings, load_settings
from scanner_app.platform.database import engine_for
from scanner_app.platform.extensions import db
from scanner_app.runtime import schema_state
from scanner_app.runtime.schema_state import (
    CREATED,
    NEEDS_MIGRATION,
    UP_TO_DATE,
    head_revisions,
    prepare_database,
)
from tests.models.test_migration_chain import schema_snapshot
from tests.support import station_env


@pytest.fixture
def settings(data_dir: Path, database_url: str) -> Settings:
    return load_settings(env=station_env(data_dir, SCANNER_DATABASE_URL=database_url))


def everything(settings: Settings) -> dict[str, Any]:
    """Schema snapshot, index definitions and every row of every table (alembic_version too)."""
    engine = engine_for(settings)
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            tables = sorted(inspector.get_table_names())
            return {
                "schema": schema_snapshot(connection),
                "index_sql": index_sql(connection),
                "rows": {t: sorted(map(tuple, connection.execute(
                    sa.text(f'SELECT * FROM "{t}"')).all()), key=repr) for t in tables},
            }
    finally:
        engine.dispose()


def index_sql(connection: sa.Connection) -> dict[str, str]:
    """Each index's definition as the database keeps it: reflection reports an expression
    index (lower(name)) without its expression."""
    if connection.dialect.name == "sqlite":
        rows = connection.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
    else:
        rows = connection.exec_driver_sql(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
    return {name: re.sub(r"\s+|\"", "", sql) for name, sql in rows}


def drop_everything(settings: Settings) -> None:
    engine = engine_for(settings)
    try:
        with engine.begin() as connection:
            db.metadata.drop_all(connection)
            connection.exec_driver_sql("DROP TABLE alembic_version")
            assert sa.inspect(connection).get_table_names() == []
    finally:
        engine.dispose()


def migrate_with_alembic(settings: Settings) -> None:
    app = create_app(settings, overrides={"TESTING": True})
    with app.app_context():
        upgrade()
        db.engine.dispose()


def test_fresh_database_is_exactly_what_the_migrations_build(settings: Settings):
    assert prepare_database(settings) == CREATED
    fast = everything(settings)
    assert fast["rows"]["alembic_version"] == [(next(iter(head_revisions())),)]
    assert "uq_sessions_auto_day" in {i[0] for i in fast["schema"]["sessions"]["indexes"]}

    drop_everything(settings)
    migrate_with_alembic(settings)
    assert everything(settings) == fast


def test_a_created_database_is_up_to_date_next_time(settings: Settings):
    assert prepare_database(settings) == CREATED
    expected = UP_TO_DATE if settings.database_url.startswith("sqlite") else NEEDS_MIGRATION
    assert prepare_database(settings) == expected


def test_sqlite_file_is_private_and_in_wal_mode(data_dir: Path):
    settings = load_settings(env=station_env(
        data_dir, SCANNER_DATABASE_URL=f"sqlite:///{data_dir / 'scanner.db'}"))
    assert prepare_database(settings) == CREATED
    path = schema_state.sqlite_path(settings.database_url)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    engine = sa.create_engine(settings.database_url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
    engine.dispose()


def test_existing_database_is_left_to_alembic(settings: Settings):
    engine = engine_for(settings)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE older (id INTEGER PRIMARY KEY)")
    engine.dispose()

    assert prepare_database(settings) == NEEDS_MIGRATION
    assert set(everything(settings)["rows"]) == {"older"}


def test_failed_creation_leaves_no_table(settings: Settings, monkeypatch):
    create_all = db.metadata.create_all

    def create_then_fail(connection, **kwargs):
        create_all(connection, **kwargs)
        assert sa.inspect(connection).get_table_names()  # the tables were there...
        raise OSError("disk gone")

    monkeypatch.setattr(db.metadata, "create_all", create_then_fail)
    with pytest.raises(OSError, match="disk gone"):
        prepare_database(settings)
    assert everything(settings)["rows"] == {}  # ...and were rolled back with the rest
    monkeypatch.undo()
    assert prepare_database(settings) == CREATED


def test_racing_creators_create_once(settings: Settings, monkeypatch):
    # Both creators are held until both have checked for tables: without the write lock
    # taken before that check, both would see an empty database and both would create.
    answers: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2, timeout=3)
    inspect = sa.inspect

    def slow_inspect(subject):
        inspector = inspect(subject)
        if isinstance(subject, sa.Connection):
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                pass  # the other creator waits on the lock: this one goes on alone
        return inspector

    monkeypatch.setattr(sa, "inspect", slow_inspect)

    def create() -> None:
        try:
            answers.append(prepare_database(settings))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    assert errors == []
    assert sorted(answers) == [CREATED, NEEDS_MIGRATION]
