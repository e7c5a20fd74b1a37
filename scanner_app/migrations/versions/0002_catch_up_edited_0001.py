"""catch up databases created by an earlier 0001

0001 was edited in place after it shipped, so a station that ran an earlier version of it is
at revision 0001 without uploads.claim_token, uploads.claimed_at and uploads.note, and (on
SQLite) without AUTOINCREMENT on scans, uploads and captures, whose ids name folders and jobs
and must never be reused. This adds whatever of that is missing. From now on a migration
that has landed is never edited: add a new one.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 17:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Tables the first 0001 created without AUTOINCREMENT (SQLite hands out deleted rows' ids).
AUTOINCREMENT_TABLES = ("scans", "uploads", "captures")


def _upload_columns() -> list[sa.Column]:
    """The columns added to 0001 after it shipped (new objects: a Column joins one table)."""
    return [
        sa.Column("claim_token", sa.String(length=64), nullable=True),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
    ]


def _has_autoincrement(bind: sa.Connection, table: str) -> bool:
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).scalar_one()
    return "AUTOINCREMENT" in sql


def _rebuild_with_autoincrement(tables: list[str]) -> None:
    """Recreate SQLite tables with AUTOINCREMENT ids, keeping rows, ids and constraints.

    A rebuild drops the old table, and with foreign keys on SQLite would apply ON DELETE
    CASCADE to the rows that refer to it (captures). The pragma is ignored inside a
    transaction, so it is switched off outside one and the rebuild gets its own."""
    with op.get_context().autocommit_block():
        op.execute("PRAGMA foreign_keys=OFF")
        op.execute("BEGIN")
        try:
            for table in tables:
                with op.batch_alter_table(
                    table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
                ):
                    pass
            op.execute("COMMIT")
        except BaseException:
            op.execute("ROLLBACK")
            raise
        finally:
            op.execute("PRAGMA foreign_keys=ON")


def upgrade():
    # Stations ran different versions of 0001 (and new ones run today's, which has it all):
    # look at what this database has and add only what is missing.
    bind = op.get_bind()
    present = {column["name"] for column in sa.inspect(bind).get_columns("uploads")}
    for column in _upload_columns():
        if column.name not in present:
            op.add_column("uploads", column)

    if bind.dialect.name == "sqlite":
        missing = [t for t in AUTOINCREMENT_TABLES if not _has_autoincrement(bind, t)]
        if missing:
            _rebuild_with_autoincrement(missing)


def downgrade():
    # Nothing to undo: today's 0001 already creates all of the above, so the schema at
    # 0001 may have it (and 0001's downgrade drops the tables).
    pass
