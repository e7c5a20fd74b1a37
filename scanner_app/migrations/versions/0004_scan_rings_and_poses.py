"""scan paths of rings: where each frame was taken from, and what a guided scan asks for

- captures.ring, captures.elevation_deg, captures.scan_pass: the ring (0-based, counted over
  the whole scan), the camera's elevation and the pass (1; 2 after the object was turned
  over) of a scan frame. NULL for uploaded images and for frames taken before rings existed.
- scans.path: the scan's rings as JSON ({"rings": [...]}); NULL for scans from before, which
  were one ring at the rig's elevation.
- scans.calibration_id: the rig calibration the scan's poses come from (NULL: nominal).
- scans.message: what the person at the rig is asked to do now (a guided ring's elevation).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 18:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("captures") as batch:
        batch.add_column(sa.Column("ring", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("elevation_deg", sa.Double(), nullable=True))
        batch.add_column(sa.Column("scan_pass", sa.Integer(), nullable=True))
    with op.batch_alter_table("scans") as batch:
        batch.add_column(sa.Column("path", sa.Text(), nullable=True))
        batch.add_column(sa.Column("calibration_id", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("message", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("scans") as batch:
        batch.drop_column("message")
        batch.drop_column("calibration_id")
        batch.drop_column("path")
    with op.batch_alter_table("captures") as batch:
        batch.drop_column("scan_pass")
        batch.drop_column("elevation_deg")
        batch.drop_column("ring")
