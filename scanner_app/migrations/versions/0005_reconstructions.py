"""reconstructions of completed scans (issue 13)

- reconstructions: one row per reconstruction job of a scan (status, stage, percent, ETA,
  error, metrics and output names as JSON, times, heartbeat, RQ job id); at most one queued
  or running per scan (partial unique index uq_reconstructions_one_active). Deleting a scan
  deletes its reconstructions (ON DELETE CASCADE); session_id follows the scan on a merge.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 18:30:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ACTIVE = "status IN ('queued', 'running')"


def upgrade():
    op.create_table(
        "reconstructions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scan_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("stage", sa.String(length=40), nullable=True),
        sa.Column("percent", sa.Double(), server_default="0", nullable=False),
        sa.Column("eta_seconds", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("metrics", sa.Text(), nullable=True),
        sa.Column("outputs", sa.Text(), nullable=True),
        sa.Column("rq_job_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'completed', 'failed', 'cancelled', "
            "'interrupted')",
            name=op.f("ck_reconstructions_status"),
        ),
        sa.ForeignKeyConstraint(
            ["scan_id"], ["scans.id"], name=op.f("fk_reconstructions_scan_id_scans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconstructions")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("reconstructions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reconstructions_scan_id"), ["scan_id"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_reconstructions_session_id"), ["session_id"],
                              unique=False)
        batch_op.create_index(
            "uq_reconstructions_one_active", ["scan_id"], unique=True,
            sqlite_where=sa.text(ACTIVE), postgresql_where=sa.text(ACTIVE),
        )


def downgrade():
    op.drop_table("reconstructions")
