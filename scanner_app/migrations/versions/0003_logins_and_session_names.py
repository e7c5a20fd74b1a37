"""logins that logout invalidates, one first-run winner, session names unique ignoring case

- users.session_token: part of every login cookie; replaced on logout (issue 9, finding 4).
- first_run: at most one row (CHECK id = 1), inserted with the first admin by /setup, so of
  racing first-run requests exactly one commits.
- uq_sessions_name_lower: "alpha" and "Alpha" are one session name (finding 6). Names that
  already clash ignoring case, and manual sessions named like an automatic one in another
  case ("session 2026-11-30", which would block that day's automatic session), are renamed
  first by appending their id.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 17:30:00

"""

import re
import secrets

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

MAX_NAME = 120
_AUTO_NAME_ANY_CASE = re.compile(r"^session \d{4}-\d{2}-\d{2}$")


def _renamed(name: str, session_id: int) -> str:
    suffix = f" ({session_id})"
    return name[: MAX_NAME - len(suffix)] + suffix


def _rename_clashing_session_names(bind: sa.Connection) -> None:
    rows = bind.execute(sa.text("SELECT id, kind, name FROM sessions ORDER BY id")).all()
    taken: set[str] = set()
    for session_id, kind, name in rows:
        key = name.lower()
        clashes = key in taken or (kind == "manual" and _AUTO_NAME_ANY_CASE.match(key))
        if clashes:
            name = _renamed(name, session_id)
            bind.execute(sa.text("UPDATE sessions SET name = :name WHERE id = :id"),
                         {"name": name, "id": session_id})
            key = name.lower()
        taken.add(key)


def upgrade():
    bind = op.get_bind()
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("session_token", sa.String(length=64), nullable=True))
    for (user_id,) in bind.execute(sa.text("SELECT id FROM users")).all():
        bind.execute(sa.text("UPDATE users SET session_token = :token WHERE id = :id"),
                     {"token": secrets.token_hex(32), "id": user_id})
    with op.batch_alter_table("users") as batch:
        batch.alter_column("session_token", existing_type=sa.String(length=64), nullable=False)

    op.create_table(
        "first_run",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("done_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_first_run_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_first_run")),
    )

    _rename_clashing_session_names(bind)
    op.create_index("uq_sessions_name_lower", "sessions", [sa.text("lower(name)")], unique=True)


def downgrade():
    op.drop_index("uq_sessions_name_lower", table_name="sessions")
    op.drop_table("first_run")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_token")
