"""Uploads: files people send into a session (CONTRACT "POST /api/v1/uploads").

`accept_upload_request` is the one entry for the API and the web form (`accept_raw_upload`
the same for PUT /api/v1/uploads?filename=NAME, whose whole body is one file):
1. stream the multipart body into a staging folder (uploads/intake.py);
2. resolve the session once (unknown or deleted id: 404, staged files removed);
3. record one Upload row per file ("processing"); the same bytes already in the session
   become a duplicate row pointing at the first one and are not stored again. Two requests
   racing with the same file cannot both store it: each request's transaction first takes
   the session row's write lock (an UPDATE of that row), so requests into one session record
   their files one after the other, and each sees what the one before it committed (on
   PostgreSQL the row lock, on SQLite the database write lock). A unique index was not used:
   merging two sessions that both hold a file must stay possible;
4. rename each file into images/uploads/<upload id>/ (same filesystem: atomic), count the
   files, commit;
5. queue one processing job for the request on the uploads queue (jobs/upload_job.py).

If Redis cannot be reached, the files are already safe on disk and in the database; they are
then processed right here in the request instead (slower answer, nothing lost or stuck). A
Redis error after the job was in fact queued makes two runs for the same uploads: each
upload is claimed by exactly one of them (upload_claims.py), so none is processed twice.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from flask import Request, current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from scanner_app.config import Settings, current_settings
from scanner_app.models import ScanSession, Upload, UploadStatus
from scanner_app.platform.clock import utcnow
from scanner_app.platform.errors import BadRequest, NotFound
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import current_storage, fsync_dir
from scanner_app.platform.web.converters import MAX_ID, parse_id
from scanner_app.sessions.counters import bump_session_counters
from scanner_app.sessions.resolver import resolve_session
from scanner_app.uploads.files.names import clean_filename, shown_filename
from scanner_app.uploads.intake import (
    FILES_FIELD,
    StagedFile,
    StagedRequest,
    raw_upload_filename,
    remove_stale_staging,
    stream_multipart,
    stream_raw,
)

log = logging.getLogger("scanner.uploads")


def get_upload(upload_id: int) -> Upload:
    upload = db.session.get(Upload, upload_id)
    if upload is None:
        raise NotFound(f"There is no upload {upload_id}. It may have been deleted with its "
                       "session.")
    return upload


def list_uploads(session_id: int) -> list[Upload]:
    """A session's uploads, oldest first."""
    return list(db.session.scalars(
        select(Upload).where(Upload.session_id == session_id).order_by(Upload.id)
    ))


def _session_id_field(staged: StagedRequest) -> int | None:
    return _session_id_value(staged.fields.get("session_id", ""))


def _session_id_value(raw: str) -> int | None:
    raw = raw.strip()
    if raw in ("", "null", "none", "current"):
        return None
    session_id = parse_id(raw, maximum=None)
    if session_id is None:
        raise BadRequest("'session_id' must be a session id (a whole number), or left out to "
                         "upload into the current session.", code="invalid_id")
    if session_id > MAX_ID:
        raise NotFound(f"There is no session {session_id}. Pick one from the session list.")
    return session_id


_swept: set[Path] = set()


def _sweep_stale_staging(staging_root: Path) -> None:
    """Once per process and data dir: remove staging folders a crash mid-request left."""
    if staging_root not in _swept:
        _swept.add(staging_root)
        removed = remove_stale_staging(staging_root)
        if removed:
            log.info("Removed %d staging folder(s) left by interrupted requests", removed)


def accept_upload_request(req: Request) -> tuple[int, list[Upload]]:
    """Take the files of a multipart request into a session. Returns (session id, uploads in
    the order sent). Raises 413 / 400 / 404 (and 507 when the disk is full) StationErrors with
    nothing left behind."""
    settings, max_bytes, staging_root = _intake_settings()
    staged = stream_multipart(req, staging_root, max_bytes,
                              settings.disk_reserve_mb * 1024 * 1024)
    return _take(settings, staged, lambda: _session_id_field(staged))


def accept_raw_upload(req: Request) -> tuple[int, list[Upload]]:
    """PUT /api/v1/uploads?filename=NAME[&session_id=N]: the whole body is one file. The same
    answer and errors as accept_upload_request; a missing or unusable name is a 400 before
    any byte of the body is read."""
    filename = raw_upload_filename(req.args.get("filename"))
    session_field = req.args.get("session_id", "")
    session_id = _session_id_value(session_field)  # a 400 / 404 before the body is read
    settings, max_bytes, staging_root = _intake_settings()
    staged = stream_raw(req, filename, staging_root, max_bytes,
                        settings.disk_reserve_mb * 1024 * 1024)
    return _take(settings, staged, lambda: session_id)


def _intake_settings() -> tuple[Settings, int, Path]:
    settings = current_settings()
    max_bytes = current_app.config.get("MAX_CONTENT_LENGTH") or settings.max_upload_mb * 2**20
    staging_root = current_storage().incoming_dir()
    _sweep_stale_staging(staging_root)
    return settings, max_bytes, staging_root


def _take(settings: Settings, staged: StagedRequest,
          session_field: Callable[[], int | None]) -> tuple[int, list[Upload]]:
    try:
        if not staged.files:
            raise BadRequest(f"There are no files in the request. Choose one or more files "
                             f"and send them in the form field '{FILES_FIELD}'.",
                             code="no_files")
        session_id = resolve_session(session_field())
        ids, to_process = _record(session_id, staged.files)
    finally:
        staged.cleanup()  # whatever was not moved into a session (duplicates, failures)
    _start_processing(settings, to_process)
    return session_id, _load(ids)


def forget_upload_objects() -> None:
    """Drop Upload and Capture objects from the database session (other objects, such as the
    signed-in user, stay). Every commit expires every object the session holds, so hundreds
    of them would make each later commit of a big request slower."""
    from scanner_app.models import Capture

    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, Upload | Capture):
            db.session.expunge(obj)


def _load(ids: list[int]) -> list[Upload]:
    """Fresh rows, in the order given (one query, whatever the request's size)."""
    forget_upload_objects()
    rows = {u.id: u for u in db.session.scalars(select(Upload).where(Upload.id.in_(ids)))}
    return [rows[upload_id] for upload_id in ids if upload_id in rows]


def _lock_session(session_id: int) -> None:
    """First statement of the transaction: takes the session row's lock (sessions row first,
    then uploads: the recorder's order too), and tells us if the session was deleted since
    it was resolved."""
    result = db.session.execute(
        update(ScanSession).where(ScanSession.id == session_id).values(updated_at=utcnow())
    )
    if result.rowcount != 1:
        db.session.rollback()
        raise _deleted_meanwhile(session_id)


def _deleted_meanwhile(session_id: int) -> NotFound:
    return NotFound(f"Session {session_id} was deleted while the files arrived, so they "
                    "were not kept. Pick another session and send them again.")


def _original_id(session_id: int, sha256: str) -> int | None:
    """The upload that first brought these bytes into the session (after a merge there may
    be two; the older one counts)."""
    return db.session.scalar(
        select(Upload.id).where(Upload.session_id == session_id, Upload.sha256 == sha256,
                                Upload.duplicate_of_id.is_(None))
        .order_by(Upload.id).limit(1)
    )


def _record(session_id: int, files: list[StagedFile]) -> tuple[list[int], list[int]]:
    """Rows, then files into place, then one commit. Returns (ids of all rows in the order
    sent, ids to process). On failure the moved files go back to the staging folder (removed
    by the caller) and nothing is counted."""
    store = current_storage()
    moved: list[tuple[Path, Path]] = []
    made_dirs = False
    ids: list[int] = []
    to_process: list[int] = []
    try:
        _lock_session(session_id)  # from here on, no other request records into it
        originals = 0
        for item in files:
            original = _original_id(session_id, item.sha256)
            if original is not None:
                duplicate = Upload(
                    session_id=session_id, filename=shown_filename(item.filename), stored_name=None,
                    size=item.size, sha256=item.sha256, status=UploadStatus.DONE,
                    duplicate_of_id=original,  # its note is made from this; no error
                )
                db.session.add(duplicate)
                db.session.flush()
                ids.append(duplicate.id)
                continue
            upload = Upload(
                session_id=session_id, filename=shown_filename(item.filename),
                stored_name=clean_filename(item.filename), size=item.size,
                sha256=item.sha256, status=UploadStatus.PROCESSING,
            )
            db.session.add(upload)
            db.session.flush()  # its id names its folder; later files of this request see it
            upload_id, stored_name = upload.id, upload.stored_name
            if not made_dirs:
                # Under the session row lock, after a row naming the session was written:
                # the session exists, so making its folders cannot bring back a deleted one.
                store.ensure_session_dir(session_id)
                made_dirs = True
            target_dir = store.upload_dir(session_id, upload_id)
            target_dir.mkdir(exist_ok=True)
            target = target_dir / stored_name
            os.rename(item.path, target)
            moved.append((target, item.path))
            ids.append(upload_id)
            to_process.append(upload_id)
            originals += 1
        for folder in {target.parent for target, _ in moved}:
            fsync_dir(folder)
        bump_session_counters(session_id, files_count=originals)
        db.session.commit()
        forget_upload_objects()
    except IntegrityError:
        # A foreign key: the session went away between resolving it and writing the rows.
        _undo(moved)
        raise _deleted_meanwhile(session_id) from None
    except BaseException:
        _undo(moved)
        raise
    log.info("Upload into session %s: %d file(s), %d duplicate(s)", session_id, originals,
             len(files) - originals)
    return ids, to_process


def _undo(moved: list[tuple[Path, Path]]) -> None:
    db.session.rollback()
    for target, staged_path in reversed(moved):
        try:
            os.rename(target, staged_path)
            target.parent.rmdir()
        except OSError:
            log.warning("Could not move %s back after a failed upload", target, exc_info=True)


def _start_processing(settings: Settings, upload_ids: list[int]) -> None:
    """Queue the processing job; process inline when the queue cannot be reached. Should the
    job have been queued after all (a timeout after Redis took it), the job and this request
    share the work through their claims: whichever claims an upload first processes it."""
    if not upload_ids:
        return
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from scanner_app.platform import queues
    from scanner_app.uploads.job import process_uploads

    try:
        connection = queues.redis_connection(settings)
        # One quick retry, not redis-py's default seconds of backoff: when Redis is down the
        # files are processed right here instead, and the person is waiting.
        connection.set_retry(Retry(NoBackoff(), 1))
        queues.enqueue(settings, queues.UPLOAD_JOBS, upload_ids, connection=connection,
                       description=f"Process uploads {upload_ids[0]}..{upload_ids[-1]}")
        return
    except Exception as exc:  # noqa: BLE001 - redis-py raises several kinds when down
        log.warning("The job queue is unreachable (%s); processing %d upload(s) in the "
                    "request instead", exc, len(upload_ids))
    process_uploads(upload_ids)


# --- for the doctor (station/doctor_uploads.py) --------------------------------------------

def find_stuck_uploads(settings: Settings):
    """Uploads 'processing' that nothing will finish (uploads.recovery.StuckUploads).
    Raises redis errors when the queue is down."""
    from scanner_app.uploads.recovery import find_stuck_uploads as find

    return find(settings)


def requeue_stuck_uploads(settings: Settings) -> list[int]:
    """Queue them again (what the worker does at start); returns the queued ids."""
    from scanner_app.uploads.recovery import recover_stuck_uploads

    return recover_stuck_uploads(settings)
