"""A reconstruction of a completed scan: the job's status, stage, progress and results."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, text
from sqlalchemy.orm import Mapped, mapped_column, validates

from scanner_app.models.statuses import (
    RECONSTRUCTION_ACTIVE,
    ReconstructionStatus,
    StatusType,
    sql_in,
)
from scanner_app.platform.clock import iso, utcnow
from scanner_app.platform.extensions import db


class Reconstruction(db.Model):
    __tablename__ = "reconstructions"
    __table_args__ = (
        CheckConstraint(sql_in("status", ReconstructionStatus), name="status"),
        # One queued or running reconstruction per scan, decided by the database.
        Index(
            "uq_reconstructions_one_active",
            "scan_id",
            unique=True,
            sqlite_where=text(sql_in("status", RECONSTRUCTION_ACTIVE)),
            postgresql_where=text(sql_in("status", RECONSTRUCTION_ACTIVE)),
        ),
        # Ids name RQ jobs and work folders: never reuse one.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    scan_id: Mapped[int] = mapped_column(db.ForeignKey("scans.id", ondelete="CASCADE"),
                                         index=True)
    # The scan's session, for its folder. No foreign key of its own: a merge moves the scan
    # (and the row follows, sessions' after-merge hook) before it deletes the old session.
    session_id: Mapped[int] = mapped_column(index=True)
    status: Mapped[ReconstructionStatus] = mapped_column(
        StatusType(ReconstructionStatus, 12), default=ReconstructionStatus.QUEUED)
    stage: Mapped[str | None] = mapped_column(db.String(40))
    percent: Mapped[float] = mapped_column(default=0.0, server_default="0")
    # Seconds left, as the job last estimated it (None while unknown).
    eta_seconds: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(db.Text)
    metrics: Mapped[str | None] = mapped_column(db.Text)  # JSON object
    outputs: Mapped[str | None] = mapped_column(db.Text)  # JSON list of file names
    rq_job_id: Mapped[str | None] = mapped_column(db.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]

    @validates("status")
    def _known_status(self, _key: str, value: str | None) -> ReconstructionStatus | None:
        return None if value is None else ReconstructionStatus(value)

    @property
    def metrics_dict(self) -> dict[str, Any]:
        try:
            value = json.loads(self.metrics or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    @property
    def output_names(self) -> list[str]:
        try:
            value = json.loads(self.outputs or "[]")
        except ValueError:
            return []
        return [str(name) for name in value] if isinstance(value, list) else []

    def to_dict(self) -> dict[str, Any]:
        """The row's fields; the API adds `outputs` as {name: url} (reconstruction/service)."""
        return {
            "id": self.id,
            "scan_id": self.scan_id,
            "session_id": self.session_id,
            "status": None if self.status is None else ReconstructionStatus(self.status).value,
            "stage": self.stage,
            "percent": round(float(self.percent or 0.0), 1),
            "eta_seconds": self.eta_seconds,
            "error": self.error,
            "metrics": self.metrics_dict,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
        }
