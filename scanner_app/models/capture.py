from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from scanner_app.platform.clock import iso, utcnow
from scanner_app.platform.extensions import db


class Capture(db.Model):
    """One image: a scan frame, an uploaded image or one extracted from an archive."""

    __tablename__ = "captures"
    __table_args__ = (
        # A resumed scan can never record the same frame twice.
        UniqueConstraint("scan_id", "frame_index", name="uq_captures_scan_frame"),
        # A session's captures a page at a time, by key (all, valid only, invalid only).
        Index("ix_captures_session_id_id", "session_id", "id"),
        Index("ix_captures_session_valid_id", "session_id", "valid", "id"),
        # Ids name folders and jobs: never reuse one (SQLite would, after a delete).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        db.ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    scan_id: Mapped[int | None] = mapped_column(
        db.ForeignKey("scans.id", ondelete="CASCADE"), index=True
    )
    upload_id: Mapped[int | None] = mapped_column(
        db.ForeignKey("uploads.id", ondelete="CASCADE"), index=True
    )
    frame_index: Mapped[int | None]
    path: Mapped[str] = mapped_column(db.Text)  # relative to the session directory
    angle_deg: Mapped[float | None]
    # Scan frames: the ring (0-based over the whole scan), its elevation and its pass (2:
    # after the object was turned over). None for uploads and for scans from before rings.
    ring: Mapped[int | None]
    elevation_deg: Mapped[float | None]
    scan_pass: Mapped[int | None]
    valid: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str | None] = mapped_column(db.Text)
    width: Mapped[int | None]
    height: Mapped[int | None]
    taken_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "session_id": self.session_id,
            "scan_id": self.scan_id,
            "upload_id": self.upload_id,
            "path": self.path,
            "ring": self.ring,
            "elevation_deg": self.elevation_deg,
            "pass": self.scan_pass,
            "angle_deg": self.angle_deg,
            "valid": self.valid,
            "reason": self.reason,
            "width": self.width,
            "height": self.height,
            "taken_at": iso(self.taken_at),
        }
