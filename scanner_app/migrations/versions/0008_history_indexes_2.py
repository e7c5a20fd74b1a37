"""more indexes for a station with years of history (issue 15), measured with bench/paging.py

- ix_sessions_active_newest on sessions (created_at, id) WHERE status = 'active': the
  newest active sessions (the current-session picker) without reading every completed one.
- ix_sessions_counters on sessions (files_count, captures_count, valid_count, invalid_count,
  scans_count): the totals over all sessions are summed from this narrow index instead of
  the whole table.
- ix_scans_status_id on scans (status, id): the newest scan in a status (the dashboard's
  newest interrupted scan) without reading every scan.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 20:45:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ACTIVE = "status = 'active'"
COUNTERS = ["files_count", "captures_count", "valid_count", "invalid_count", "scans_count"]


def upgrade():
    op.create_index("ix_sessions_active_newest", "sessions", ["created_at", "id"],
                    sqlite_where=sa.text(ACTIVE), postgresql_where=sa.text(ACTIVE))
    op.create_index("ix_sessions_counters", "sessions", COUNTERS)
    op.create_index("ix_scans_status_id", "scans", ["status", "id"])


def downgrade():
    op.drop_index("ix_scans_status_id", table_name="scans")
    op.drop_index("ix_sessions_counters", table_name="sessions")
    op.drop_index("ix_sessions_active_newest", table_name="sessions")
