from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Index, text
from sqlalchemy.orm import Mapped, mapped_column, validates

from scanner_app.models.statuses import SessionStatus, StatusType, sql_in
from scanner_app.platform.clock import iso, utcnow
from scanner_app.platform.extensions import db

COUNTERS = ("files_count", "captures_count", "valid_count", "invalid_count", "scans_count")
# Literal, so that a query saying it can use the partial index ix_sessions_active_newest.
SESSION_IS_ACTIVE = f"status = '{SessionStatus.ACTIVE.value}'"


class ScanSession(db.Model):
    """A session: one directory of captures, scans and uploads (see CONTRACT "On disk")."""

    __tablename__ = "sessions"
    __table_args__ = (
        # The one thing that makes "two Today sessions" impossible: the database refuses a
        # second auto row for a day. The predicate is literal SQL: a bound parameter there
        # breaks ON CONFLICT once psycopg 3 prepares the statement server-side.
        Index(
            "uq_sessions_auto_day",
            "day",
            unique=True,
            sqlite_where=text("kind = 'auto'"),
            postgresql_where=text("kind = 'auto'"),
        ),
        # "alpha" and "Alpha" are one name (sessions/names.py also compares casefolded).
        Index("uq_sessions_name_lower", text("lower(name)"), unique=True),
        # Sessions newest first, a page at a time; the newest active ones (pickers).
        Index("ix_sessions_created_at_id", "created_at", "id"),
        Index("ix_sessions_active_newest", "created_at", "id",
              sqlite_where=text(SESSION_IS_ACTIVE), postgresql_where=text(SESSION_IS_ACTIVE)),
        # Totals over all sessions are summed from this narrow index, not the whole table.
        Index("ix_sessions_counters", *COUNTERS),
        CheckConstraint("kind IN ('auto', 'manual')", name="kind"),
        CheckConstraint(sql_in("status", SessionStatus), name="status"),
        {"sqlite_autoincrement": True},  # never reuse an id: it names a directory
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(db.String(10))
    day: Mapped[date] = mapped_column(db.Date)
    name: Mapped[str] = mapped_column(db.String(120), unique=True)
    status: Mapped[SessionStatus] = mapped_column(StatusType(SessionStatus, 10),
                                                  default=SessionStatus.ACTIVE)
    files_count: Mapped[int] = mapped_column(default=0, server_default="0")
    captures_count: Mapped[int] = mapped_column(default=0, server_default="0")
    valid_count: Mapped[int] = mapped_column(default=0, server_default="0")
    invalid_count: Mapped[int] = mapped_column(default=0, server_default="0")
    scans_count: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @validates("status")
    def _known_status(self, _key: str, value: str | None) -> SessionStatus | None:
        # Assigned as a plain string too: keep the enum, so pages can ask it questions.
        return None if value is None else SessionStatus(value)

    def to_dict(self) -> dict:
        # Read from the loaded row (a page of the list turns 50 of these into JSON; attribute
        # access cost more than the rest, issue 15); an expired row loads as usual.
        values = self.__dict__
        if not values.keys() >= _DICT_FIELDS:
            values = {name: getattr(self, name) for name in _DICT_FIELDS}
        status = values["status"]
        if status is not None and not isinstance(status, SessionStatus):
            status = SessionStatus(status)
        return {
            "id": values["id"],
            "kind": values["kind"],
            "day": values["day"].isoformat(),
            "name": values["name"],
            "status": None if status is None else status.value,
            **{name: values[name] for name in COUNTERS},
            "created_at": iso(values["created_at"]),
            "updated_at": iso(values["updated_at"]),
        }


_DICT_FIELDS = frozenset(("id", "kind", "day", "name", "status", "created_at", "updated_at",
                          *COUNTERS))


class StationState(db.Model):
    """Single row (id=1) of station-wide state: which manual session is current."""

    __tablename__ = "station_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    current_session_id: Mapped[int | None] = mapped_column(
        db.ForeignKey("sessions.id", ondelete="SET NULL"), nullable=True
    )
