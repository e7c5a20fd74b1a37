"""The migration chain builds exactly the schema the models describe, on SQLite and PostgreSQL,
both on a new station (base -> head) and on one that ran the first shipped 0001 (which was
later edited in place) and then upgrades to head with its data.

Two comparisons: Alembic autogenerate (`compare_metadata`, types and server defaults
included) and a reflected snapshot of every table next to one of `db.metadata.create_all()`.
The snapshot also covers what autogenerate does not compare: CHECK constraints, partial-index
predicates, foreign-key actions and SQLite AUTOINCREMENT.

data/first_shipped_0001_initial_schema.py is, byte for byte,
`git show 5a5f360:scanner_app/migrations/versions/0001_initial_schema.py` (git blob ce248c7).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, stamp, upgrade

from scanner_app import MIGRATIONS_DIR, create_app
from scanner_app.config import load_settings
from scanner_app.platform.extensions import db
from tests.support import station_env

DATA = Path(__file__).parent / "data"
FIRST_SHIPPED_0001 = DATA / "first_shipped_0001_initial_schema.py"
VERSIONS = MIGRATIONS_DIR / "versions"
NOW = datetime(2026, 11, 21, 6, 0, 0)


@pytest.fixture
def unmigrated_app(data_dir: Path, database_url: str):
    """A station app on an empty database: each test decides how its schema comes to be."""
    settings = load_settings(env=station_env(data_dir, SCANNER_DATABASE_URL=database_url))
    app = create_app(settings, overrides={"TESTING": True})
    yield app
    with app.app_context():  # close its connections: the test's database is dropped next
        db.engine.dispose()


def unspaced(sql: str) -> str:
    """SQLite keeps a CHECK or index predicate as written: spacing is not schema."""
    return re.sub(r"\s+", "", sql)


def schema_snapshot(connection: sa.Connection) -> dict[str, dict[str, Any]]:
    """Everything reflection sees of the station's tables, order-free, so that two databases
    built in different ways compare equal exactly when their schemas are the same."""
    inspector = sa.inspect(connection)
    dialect = connection.dialect.name
    snapshot = {}
    for table in inspector.get_table_names():
        if table == "alembic_version":  # Alembic's own bookkeeping, not a model
            continue
        pk = inspector.get_pk_constraint(table)
        snapshot[table] = {
            "columns": {
                c["name"]: (str(c["type"]), c["nullable"], c["default"])
                for c in inspector.get_columns(table)
            },
            "primary_key": (pk["name"], tuple(pk["constrained_columns"])),
            "foreign_keys": sorted(
                (fk["name"], tuple(fk["constrained_columns"]), fk["referred_table"],
                 tuple(fk["referred_columns"]), tuple(sorted(fk["options"].items())))
                for fk in inspector.get_foreign_keys(table)
            ),
            "unique": sorted(
                (u["name"], tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(table)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), i["unique"],
                 unspaced(str(i.get("dialect_options", {}).get(f"{dialect}_where"))))
                for i in inspector.get_indexes(table)
            ),
            "checks": sorted(
                (c["name"], unspaced(c["sqltext"]))
                for c in inspector.get_check_constraints(table)
            ),
        }
        if dialect == "sqlite":
            # Reflection does not report it: read the table's own SQL.
            sql = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).scalar_one()
            snapshot[table]["autoincrement"] = "AUTOINCREMENT" in sql
    return snapshot


def models_snapshot() -> dict[str, dict[str, Any]]:
    """The snapshot of the schema the models create, on this test's (still empty) database."""
    with db.engine.begin() as connection:
        db.metadata.create_all(connection)
        snapshot = schema_snapshot(connection)
        db.metadata.drop_all(connection)
    assert set(snapshot) == set(db.metadata.tables)
    return snapshot


def differences_from_models() -> list:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        diff = compare_metadata(context, db.metadata)
    return [d for d in diff
            if not (d[0] == "remove_table" and d[1].name == "alembic_version")]


def run_first_shipped_0001() -> None:
    """Create the schema exactly as the first shipped 0001 did, through Alembic's operations."""
    spec = importlib.util.spec_from_file_location("first_shipped_0001", FIRST_SHIPPED_0001)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert migration.revision == "0001"
    with db.engine.begin() as connection, Operations.context(
        MigrationContext.configure(connection)
    ):
        migration.upgrade()


def insert_station_data() -> dict[str, int]:
    """A session with a scan, an upload and its duplicate, captures from both, a user and an
    API key: written with the first shipped columns only. Returns the new ids."""
    def insert(connection: sa.Connection, table: str, **values: Any) -> int:
        columns = ", ".join(values)
        params = ", ".join(f":{name}" for name in values)
        return connection.execute(
            sa.text(f"INSERT INTO {table} ({columns}) VALUES ({params}) RETURNING id"), values
        ).scalar_one()

    with db.engine.begin() as c:
        ids = {"session": insert(c, "sessions", kind="manual", day=date(2026, 11, 21),
                                 name="2026-11-21 bowl", status="active", captures_count=2,
                                 created_at=NOW, updated_at=NOW)}
        ids["scan"] = insert(c, "scans", session_id=ids["session"], status="completed",
                             profile="quick", frames_planned=1, frames_captured=1,
                             source="api", created_at=NOW)
        ids["upload"] = insert(c, "uploads", session_id=ids["session"], filename="a.jpg",
                               stored_name="a.jpg", size=3, sha256="ab" * 32, status="done",
                               captures_count=1, created_at=NOW)
        ids["duplicate"] = insert(c, "uploads", session_id=ids["session"], filename="b.jpg",
                                  size=3, sha256="ab" * 32, status="done",
                                  duplicate_of_id=ids["upload"], created_at=NOW)
        ids["scan_capture"] = insert(c, "captures", session_id=ids["session"],
                                     scan_id=ids["scan"], frame_index=0,
                                     path="scans/1/frame_000.jpg", valid=True, created_at=NOW)
        ids["upload_capture"] = insert(c, "captures", session_id=ids["session"],
                                       upload_id=ids["upload"], path="uploads/a.jpg",
                                       valid=True, created_at=NOW)
        insert(c, "station_state", id=1, current_session_id=ids["session"])
        insert(c, "users", name="admin", password_hash="x", is_admin=True, created_at=NOW)
        insert(c, "api_keys", name="tests", key_hash="cd" * 32, created_at=NOW)
    return ids


def test_new_station_migrates_to_the_models_schema(unmigrated_app):
    with unmigrated_app.app_context():
        expected = models_snapshot()
        upgrade()
        assert differences_from_models() == []
        with db.engine.connect() as connection:
            assert schema_snapshot(connection) == expected

        downgrade(revision="base")
        with db.engine.connect() as connection:
            assert schema_snapshot(connection) == {}


def test_station_on_first_shipped_schema_upgrades_with_its_data(unmigrated_app):
    with unmigrated_app.app_context():
        expected = models_snapshot()
        run_first_shipped_0001()
        stamp(revision="0001")
        with db.engine.connect() as connection:
            assert "note" not in {c["name"] for c in sa.inspect(connection).get_columns("uploads")}
        ids = insert_station_data()

        upgrade()

        assert differences_from_models() == []
        with db.engine.begin() as c:
            assert schema_snapshot(c) == expected
            assert c.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() \
                == ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
            # Rebuilding a parent table must not cascade to its children (captures).
            assert sorted(c.execute(sa.text(
                "SELECT id, scan_id, upload_id, path FROM captures"
            )).all()) == [
                (ids["scan_capture"], ids["scan"], None, "scans/1/frame_000.jpg"),
                (ids["upload_capture"], None, ids["upload"], "uploads/a.jpg"),
            ]
            assert sorted(c.execute(sa.text(
                "SELECT id, duplicate_of_id, status, note, claim_token FROM uploads"
            )).all()) == [(ids["upload"], None, "done", None, None),
                          (ids["duplicate"], ids["upload"], "done", None, None)]
            assert c.execute(sa.text(
                "SELECT s.name, s.captures_count, t.current_session_id, x.status, x.profile "
                "FROM sessions s JOIN station_state t ON t.current_session_id = s.id "
                "JOIN scans x ON x.session_id = s.id"
            )).one() == ("2026-11-21 bowl", 2, ids["session"], "completed", "quick")
            assert c.execute(sa.text("SELECT name FROM users")).scalars().all() == ["admin"]
            assert c.execute(sa.text("SELECT name FROM api_keys")).scalars().all() == ["tests"]
            # The new columns are usable, and a deleted id is not handed out again.
            c.execute(sa.text("UPDATE uploads SET note = 'kept' WHERE id = :id"),
                      {"id": ids["upload"]})
            c.execute(sa.text("DELETE FROM uploads WHERE id = :id"), {"id": ids["duplicate"]})
            new_id = c.execute(sa.text(
                "INSERT INTO uploads (session_id, filename, size, status, created_at) "
                "VALUES (:s, 'c.jpg', 1, 'processing', :now) RETURNING id"
            ), {"s": ids["session"], "now": NOW}).scalar_one()
            assert new_id > ids["duplicate"]
        with db.engine.connect() as c:
            if c.dialect.name == "sqlite":  # the pooled connection enforces foreign keys again
                assert c.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1


def test_landed_migrations_are_never_edited():
    landed = json.loads((DATA / "migration_hashes.json").read_text())["landed"]
    files = {path.name: path for path in VERSIONS.iterdir() if path.is_file()}
    for name, digest in landed.items():
        assert name in files, f"{name} has landed: restore it and add a new migration instead"
        assert hashlib.sha256(files[name].read_bytes()).hexdigest() == digest, (
            f"{name} has landed on stations: add a new migration instead of editing {name}"
        )


def test_migrations_form_one_chain():
    # Two migrations written on the same parent leave two heads: `db upgrade` then refuses.
    assert len(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads()) == 1
