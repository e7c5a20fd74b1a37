from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint
from sqlalchemy.orm import Mapped, mapped_column, validates

from scanner_app.models.statuses import StatusType, UploadStatus, sql_in
from scanner_app.platform.clock import iso, utcnow
from scanner_app.platform.extensions import db


def duplicate_note(original_id: int) -> str:
    """What a person reads on a duplicate: it is done, nothing went wrong."""
    return f"Same file as upload {original_id}; stored once."


class Upload(db.Model):
    """One file received in an upload request (an archive is one file)."""

    __tablename__ = "uploads"
    __table_args__ = (
        CheckConstraint(sql_in("status", UploadStatus), name="status"),
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
    status: Mapped[UploadStatus] = mapped_column(StatusType(UploadStatus, 12),
                                                 default=UploadStatus.PROCESSING)
    captures_count: Mapped[int] = mapped_column(default=0, server_default="0")
    valid_count: Mapped[int] = mapped_column(default=0, server_default="0")
    invalid_count: Mapped[int] = mapped_column(default=0, server_default="0")
    duplicate_of_id: Mapped[int | None] = mapped_column(
        db.ForeignKey("uploads.id", ondelete="SET NULL")
    )
    # `error` says why an upload failed; `note` what a person should know about one that was
    # processed fine (e.g. archive entries skipped for safety, still inside the kept archive).
    # Scripts treat a non-null error as a failure, so a done upload never has one.
    error: Mapped[str | None] = mapped_column(db.Text)
    note: Mapped[str | None] = mapped_column(db.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Which processing run holds the upload, and when it last said so (a lease it renews as
    # it goes): two runs never process one upload at once (services/upload_claims.py).
    claim_token: Mapped[str | None] = mapped_column(db.String(64))
    claimed_at: Mapped[datetime | None] = mapped_column()

    @property
    def shown_note(self) -> str | None:
        """The note to show: a duplicate's is made from duplicate_of_id (never stored)."""
        if self.duplicate_of_id is not None:
            return duplicate_note(self.duplicate_of_id)
        return self.note

    @validates("status")
    def _known_status(self, _key: str, value: str | None) -> UploadStatus | None:
        # Assigned as a plain string too: keep the enum, so pages can ask it questions.
        return None if value is None else UploadStatus(value)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "session_id": self.session_id,
            "filename": self.filename,
            "size": self.size,
            "sha256": self.sha256,
            "status": None if self.status is None else UploadStatus(self.status).value,
            "captures_count": self.captures_count,
            "valid_count": self.valid_count,
            "invalid_count": self.invalid_count,
            "duplicate_of": self.duplicate_of_id,
            "error": self.error,
            "note": self.shown_note,
            "created_at": iso(self.created_at),
        }
