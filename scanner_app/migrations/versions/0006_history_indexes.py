"""indexes for paging through years of history (issue 15)

- ix_captures_session_id_id on captures (session_id, id): a session's captures in id order,
  a page at a time, found by key instead of walked with OFFSET.
- ix_captures_session_valid_id on captures (session_id, valid, id): the same for the valid
  and invalid filters.
- ix_sessions_created_at_id on sessions (created_at, id): sessions newest first, a page at
  a time, without sorting the whole table.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 20:20:00

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_captures_session_id_id", "captures", ["session_id", "id"])
    op.create_index("ix_captures_session_valid_id", "captures", ["session_id", "valid", "id"])
    op.create_index("ix_sessions_created_at_id", "sessions", ["created_at", "id"])


def downgrade():
    op.drop_index("ix_sessions_created_at_id", table_name="sessions")
    op.drop_index("ix_captures_session_valid_id", table_name="captures")
    op.drop_index("ix_captures_session_id_id", table_name="captures")
