from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, text
from sqlalchemy.orm import Mapped, mapped_column, validates

from scanner_app.models.statuses import SCAN_ACTIVE, ScanStatus, StatusType, sql_in
from scanner_app.platform.clock import iso, utcnow
from scanner_app.platform.extensions import db

# A station has one rig: while a scan is in one of these, no other scan may start.
SCAN_ACTIVE_STATUSES = SCAN_ACTIVE


class Scan(db.Model):
    __tablename__ = "scans"
    __table_args__ = (
        CheckConstraint(sql_in("status", ScanStatus), name="status"),
        CheckConstraint("source IN ('web', 'api', 'button')", name="source"),
        # One scan at a time, decided by the database like the one auto session per day.
        Index(
            "uq_scans_one_active",
            "station",
            unique=True,
            sqlite_where=text(sql_in("status", SCAN_ACTIVE)),
            postgresql_where=text(sql_in("status", SCAN_ACTIVE)),
        ),
        # The newest scan in a status (the dashboard's newest interrupted scan).
        Index("ix_scans_status_id", "status", "id"),
        # Ids name folders and RQ jobs (scan-<id>): never reuse one.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        db.ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    # Constant 1: the column the "one active scan" index is built on.
    station: Mapped[int] = mapped_column(default=1, server_default="1")
    status: Mapped[ScanStatus] = mapped_column(StatusType(ScanStatus, 12),
                                               default=ScanStatus.QUEUED)
    profile: Mapped[str] = mapped_column(db.String(60))
    # The profile's settings when the scan started (JSON, scans/profiles.py): editing the
    # profile later changes neither this scan nor its resume.
    profile_snapshot: Mapped[str | None] = mapped_column(db.Text)
    frames_planned: Mapped[int]
    frames_captured: Mapped[int] = mapped_column(default=0, server_default="0")
    current_angle: Mapped[float | None]
    error: Mapped[str | None] = mapped_column(db.Text)
    source: Mapped[str] = mapped_column(db.String(10), default="api")
    # Asked for by the API, acted on by the job between frames: "pause" | "cancel" | None.
    control: Mapped[str | None] = mapped_column(db.String(10))
    rq_job_id: Mapped[str | None] = mapped_column(db.String(64))
    # The rings to take, as JSON (scans/path.py); None: one ring of frames_planned frames.
    path: Mapped[str | None] = mapped_column(db.Text)
    # The rig calibration the frames' poses come from; None: nominal poses.
    calibration_id: Mapped[str | None] = mapped_column(db.String(40))
    # What the person at the rig should do now (set the camera for a guided ring).
    message: Mapped[str | None] = mapped_column(db.Text)
    heartbeat_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    @validates("status")
    def _known_status(self, _key: str, value: str | None) -> ScanStatus | None:
        # Assigned as a plain string too: keep the enum, so pages can ask it questions.
        return None if value is None else ScanStatus(value)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "session_id": self.session_id,
            "status": None if self.status is None else ScanStatus(self.status).value,
            "profile": self.profile,
            "frames_planned": self.frames_planned,
            "frames_captured": self.frames_captured,
            # Progress without a query; the API adds eta_seconds (services.scans.scan_json).
            "percent": (
                round(100.0 * (self.frames_captured or 0) / self.frames_planned, 1)
                if self.frames_planned else 0.0
            ),
            "current_angle": self.current_angle,
            "message": self.message,
            "control": self.control,
            "error": self.error,
            "source": self.source,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
        }
