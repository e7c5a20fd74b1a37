"""Writing an upload's captures and counters, a batch at a time (so the counters grow while a
big archive is processed), safely against a session being merged or deleted meanwhile, and
against a second run processing the same upload.

Each batch is one transaction that locks rows in the order merge and delete do: first the
session row, then the upload row. The session id is re-read from the Upload row on every
batch (a merge moves uploads to another session), and a batch whose upload or session is gone
stops the processing quietly: the work was deleted with its session. The upload row is only
written where this run's claim token still stands (upload_claims.py), in the same statement
that renews the lease: a run that lost its claim raises ClaimLost and counts nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update

from scanner_app.models import Capture, ScanSession, Upload, UploadStatus, transition
from scanner_app.platform.clock import utcnow
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import StorageManager
from scanner_app.platform.thumbnails import make_thumbnail
from scanner_app.sessions.counters import bump_session_counters
from scanner_app.uploads.claims import Claim, ClaimLost

log = logging.getLogger("scanner.uploads")

BATCH_SIZE = 50
INVALID_SHOWN = 3  # files named in an upload's error; the rest are counted
ATTEMPTS = 5


class UploadGone(Exception):
    """The upload (with its session) was deleted while it was being processed."""


@dataclass(frozen=True)
class Draft:
    """A capture to record: `parts` is its path inside the upload's folder."""

    parts: tuple[str, ...]
    valid: bool
    reason: str | None = None
    width: int | None = None
    height: int | None = None
    taken_at: datetime | None = None


def capture_path(storage: StorageManager, session_id: int, upload_id: int,
                 parts: tuple[str, ...]) -> str:
    """A capture's path as stored: relative to its session directory, with '/'."""
    path = storage.upload_dir(session_id, upload_id).joinpath(*parts)
    return path.relative_to(storage.session_dir(session_id)).as_posix()


def _why_not_held(upload_id: int, claim: Claim) -> None:
    """After a write found no row to lock: raise why (gone, or taken by another run), or
    return when the upload merely moved to another session meanwhile (look again)."""
    db.session.rollback()  # read what others committed, not this transaction's view
    row = db.session.execute(select(Upload.status, Upload.claim_token)
                             .where(Upload.id == upload_id)).first()
    db.session.rollback()
    if row is None:
        raise UploadGone(upload_id)
    if not row.status.is_processing or row.claim_token != claim.token:
        claim.lost(upload_id)
        raise ClaimLost(upload_id)


def locked_session_id(upload_id: int, claim: Claim, **upload_values) -> int:
    """Begin a write that holds the upload's session row and then the upload row (only while
    `claim` still holds it; its lease is renewed in the same statement); returns where the
    upload lives now. Raises UploadGone when it was deleted, ClaimLost when another run holds
    or finished it."""
    for _ in range(ATTEMPTS):
        session_id = db.session.scalar(select(Upload.session_id).where(Upload.id == upload_id))
        if session_id is None:
            db.session.rollback()
            raise UploadGone(upload_id)
        held = db.session.execute(
            update(ScanSession).where(ScanSession.id == session_id).values(updated_at=utcnow())
        ).rowcount
        if held == 1:
            held = db.session.execute(
                update(Upload).where(Upload.id == upload_id, Upload.session_id == session_id,
                                     Upload.status == UploadStatus.PROCESSING,
                                     Upload.claim_token == claim.token)
                .values(claimed_at=utcnow(), **upload_values)
            ).rowcount
            if held == 1:
                return session_id
        _why_not_held(upload_id, claim)  # merged between the read and the lock: look again
    raise UploadGone(upload_id)


class Recorder:
    def __init__(self, upload_id: int, storage: StorageManager, claim: Claim):
        self.upload_id = upload_id
        self.storage = storage
        self.claim = claim
        self.pending: list[Draft] = []
        self.recorded = 0
        self.valid = 0
        # The first few invalid files with their reasons: the upload's `error` names them.
        self.invalid: list[tuple[tuple[str, ...], str]] = []

    def add(self, draft: Draft) -> None:
        self.pending.append(draft)
        if len(self.pending) >= BATCH_SIZE:
            self.flush()
        else:
            self.claim.checkpoint(self.upload_id)

    def flush(self) -> None:
        if not self.pending:
            return
        drafts, self.pending = self.pending, []
        count = len(drafts)
        for draft in drafts:
            if not draft.valid and len(self.invalid) < INVALID_SHOWN + 1:
                self.invalid.append((draft.parts, draft.reason or "It is not valid."))
        valid = sum(1 for d in drafts if d.valid)
        session_id = locked_session_id(
            self.upload_id, self.claim,
            captures_count=Upload.captures_count + count,
            valid_count=Upload.valid_count + valid,
            invalid_count=Upload.invalid_count + (count - valid),
        )
        captures = [
            Capture(session_id=session_id, upload_id=self.upload_id,
                    path=capture_path(self.storage, session_id, self.upload_id, d.parts),
                    valid=d.valid, reason=d.reason, width=d.width, height=d.height,
                    taken_at=d.taken_at)
            for d in drafts
        ]
        db.session.add_all(captures)
        bump_session_counters(session_id, captures_count=count, valid_count=valid,
                              invalid_count=count - valid)
        db.session.commit()
        self.recorded += count
        self.valid += valid
        made = [(c.id, d) for c, d in zip(captures, drafts, strict=True) if d.valid]
        for capture in captures:
            db.session.expunge(capture)
        self._thumbnails(session_id, made)

    def _thumbnails(self, session_id: int, items: list[tuple[int, Draft]]) -> None:
        if not self.storage.session_dir(session_id).is_dir():
            return  # deleted or merged away since the commit; never re-create it
        folder = self.storage.upload_dir(session_id, self.upload_id)
        for capture_id, draft in items:
            try:
                make_thumbnail(folder.joinpath(*draft.parts),
                               self.storage.thumbnail_path(session_id, capture_id))
            except Exception:  # noqa: BLE001 - a missing thumbnail is not a lost image
                log.warning("No thumbnail for capture %s", capture_id, exc_info=True)


def reset_partial(upload_id: int, storage: StorageManager, claim: Claim) -> None:
    """Undo the captures and counts of a processing run that stopped half-way (crashed, or
    lost its claim), so this run, which now holds the claim, counts every image exactly
    once."""
    session_id = locked_session_id(upload_id, claim)
    upload = db.session.get(Upload, upload_id)
    db.session.refresh(upload)
    capture_ids = list(db.session.scalars(select(Capture.id).where(
        Capture.upload_id == upload_id)))
    db.session.execute(delete(Capture).where(Capture.upload_id == upload_id))
    bump_session_counters(session_id, captures_count=-upload.captures_count,
                          valid_count=-upload.valid_count,
                          invalid_count=-upload.invalid_count)
    upload.captures_count = upload.valid_count = upload.invalid_count = 0
    db.session.commit()
    for capture_id in capture_ids:
        storage.thumbnail_path(session_id, capture_id).unlink(missing_ok=True)
    log.info("Upload %s: reset %d captures of an interrupted run", upload_id, len(capture_ids))


def invalid_files_sentence(recorder: Recorder) -> str | None:
    """The `error` of a done upload with invalid files: the reason itself for a single file,
    else which files are not valid images and why (the first few). None when all are
    valid."""
    invalid = recorder.invalid
    if not invalid:
        return None
    if recorder.recorded == 1 and len(invalid[0][0]) == 1:
        return invalid[0][1]  # the file sent itself, not something inside an archive
    total_invalid = recorder.recorded - recorder.valid
    # Inside an archive: its path in the archive (parts[0] is the extraction folder).
    shown = " ".join(f"'{_shown('/'.join(parts[1:] or parts))}': {reason}"
                     for parts, reason in invalid[:INVALID_SHOWN])
    more = total_invalid - min(len(invalid), INVALID_SHOWN)
    tail = f" And {more} more." if more > 0 else ""
    are = "is not a valid image" if total_invalid == 1 else "are not valid images"
    return f"{total_invalid} of {recorder.recorded} files {are}. {shown}{tail}"


def _shown(name: str, limit: int = 80) -> str:
    return name if len(name) <= limit else f"{name[:limit // 2]}…{name[-limit // 2:]}"


def finish(upload_id: int, status: UploadStatus, sentence: str | None,
           token: str | None = None, invalid: str | None = None) -> bool:
    """processing -> done/failed, releasing the claim. `sentence` is the note of a done
    upload or the error of a failed one; `invalid` is the error of a done upload whose files
    are not all valid images (the upload is done: nothing was lost, but a person must see
    why). With `token`, only while that run holds the upload. False if nothing changed
    (gone, already finished, or held by another run)."""
    failed = UploadStatus(status).is_failed
    changed = transition(Upload, upload_id, status,
                         where=[Upload.claim_token == token] if token is not None else [],
                         error=sentence if failed else invalid,
                         note=None if failed else sentence,
                         claim_token=None, claimed_at=None)
    db.session.commit()
    return changed
