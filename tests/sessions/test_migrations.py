"""The migration builds exactly the schema the models describe (SQLite and PostgreSQL)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from scanner_app.platform.extensions import db


def test_migrated_schema_matches_models(app):
    with app.app_context(), db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
    # alembic_version is Alembic's own table, not a model.
    diff = [d for d in diff if not (d[0] == "remove_table" and d[1].name == "alembic_version")]
    assert diff == []


def test_sqlite_never_reuses_ids_that_name_folders_and_jobs(app):
    from sqlalchemy import text

    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            return  # PostgreSQL sequences never reuse ids
        schema = dict(db.session.execute(text("SELECT name, sql FROM sqlite_master "
                                              "WHERE type = 'table'")).all())
    for table in ("sessions", "scans", "uploads", "captures"):
        assert "AUTOINCREMENT" in schema[table], table
