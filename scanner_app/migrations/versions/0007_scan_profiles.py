"""scan profiles edited on the settings page, the default profile, a scan's own profile copy

- scan_profiles: a profile saved on the settings page or PUT /api/v1/profiles/<name>; it
  overrides config/scanner.toml's profile of the same name (deleting the row brings the
  file's back) or adds a new one. rings is JSON ([{"elevation_deg", "frames"}]).
- station_settings: station-wide choices made in the UI, by key (default_profile).
- scans.profile_snapshot: the profile's settings when the scan started (JSON), so editing a
  profile changes neither a running scan nor one resumed later. NULL for older scans.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 20:40:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "scan_profiles",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("settle_seconds", sa.Double(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("jpeg_quality", sa.Integer(), nullable=False),
        sa.Column("rings", sa.Text(), nullable=False),
        sa.Column("turn_over", sa.Boolean(), nullable=False),
        sa.Column("auto_reconstruct", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scan_profiles")),
    )
    op.create_table(
        "station_settings",
        sa.Column("key", sa.String(length=60), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_station_settings")),
    )
    with op.batch_alter_table("scans") as batch:
        batch.add_column(sa.Column("profile_snapshot", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("scans") as batch:
        batch.drop_column("profile_snapshot")
    op.drop_table("station_settings")
    op.drop_table("scan_profiles")
