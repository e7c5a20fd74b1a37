from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint
from sqlalchemy.orm import Mapped, mapped_column

from scanner_app.extensions import db
from scanner_app.models._time import iso, utcnow


class Upload(db.Model):
    """One file received in an upload request (an archive is one file)."""

    __tablename__ = "uploads"
    __table_args__ = (
        CheckConstraint("status IN ('processing', 'done', 'failed')", name="status"),
        # Ids name folders and jobs: never reuse one (SQLite would, after a delete).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        db.ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(db.Text)  # as the person sent it
    stored_name: Mapped[str | None] = mapped_column(db.String(255))  # cleaned, on disk
    size: Mapped[int] = mapped_column(db.BigInteger, default=0)
    sha256: Mapped[str | None] = mapped_column(db.String(64), index=True)
    status: Mapped[str] = mapped_column(db.String(12), default="processing")
    captures_count: Mapped[int] = mapped_column(default=0, server_default="0")
    valid_count: Mapped[int] = mapped_column(default=0, server_default="0")
    invalid_count: Mapped[int] = mapped_column(default=0, server_default="0")
    duplicate_of_id: Mapped[int | None] = mapped_column(
        db.ForeignKey("uploads.id", ondelete="SET NULL")
    )
    error: Mapped[str | None] = mapped_column(db.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Which processing run holds the upload, and when it last said so (a lease it renews as
    # it goes): two runs never process one upload at once (services/upload_claims.py).
    claim_token: Mapped[str | None] = mapped_column(db.String(64))
    claimed_at: Mapped[datetime | None] = mapped_column()

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "session_id": self.session_id,
            "filename": self.filename,
            "size": self.size,
            "sha256": self.sha256,
            "status": self.status,
            "captures_count": self.captures_count,
            "valid_count": self.valid_count,
            "invalid_count": self.invalid_count,
            "duplicate_of": self.duplicate_of_id,
            "error": self.error,
            "created_at": iso(self.created_at),
        }
