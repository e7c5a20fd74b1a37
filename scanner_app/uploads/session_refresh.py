"""Keep metadata/session.json in step with the counters uploads change.

The counters live in the database (counters.py); the session record on disk is a copy that
export.zip ships, so it is rewritten from a fresh read of the row once a request's files are
recorded and once its processing run ends: once per request or run, never per file. The row
is read after the commit; a session deleted or merged away meanwhile is skipped, and its
directory is never made again (StorageManager.refresh_session_record).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import select

from scanner_app.models import ScanSession, Upload
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import StorageManager

log = logging.getLogger("scanner.uploads")

_CHUNK = 500  # ids per statement, well under any database's limit on bound values


def refresh_session_records(storage: StorageManager, session_ids: Iterable[int]) -> int:
    """Rewrite the record of each session from its row as committed now (call it after a
    commit, with nothing pending). Returns how many were rewritten. Never raises: the
    database holds the truth, and a record that could not be written is rewritten by the
    next change (or `scanner doctor --repair`)."""
    written = 0
    for session_id in sorted(set(session_ids)):
        try:
            # populate_existing: read the row again, not the copy this session may hold.
            session = db.session.get(ScanSession, session_id, populate_existing=True)
            record = session.to_dict() if session is not None else None
            db.session.commit()  # end the read before touching the disk
            if record is not None and storage.refresh_session_record(record):
                written += 1
        except Exception:  # noqa: BLE001 - e.g. a full disk; the uploads themselves are fine
            db.session.rollback()
            log.warning("Could not rewrite the record of session %s", session_id,
                        exc_info=True)
    return written


def sessions_of_uploads(upload_ids: list[int]) -> set[int]:
    """The sessions these uploads are in now (a merge may have moved them)."""
    found: set[int] = set()
    for start in range(0, len(upload_ids), _CHUNK):
        chunk = upload_ids[start:start + _CHUNK]
        found.update(db.session.scalars(
            select(Upload.session_id).where(Upload.id.in_(chunk)).distinct()))
    db.session.commit()  # end the read
    return found


def refresh_after_processing(storage: StorageManager, upload_ids: list[int]) -> None:
    """After a processing run: rewrite the records of the sessions its uploads are in."""
    try:
        session_ids = sessions_of_uploads(upload_ids)
    except Exception:  # noqa: BLE001 - as above: never fail a run over the copy on disk
        db.session.rollback()
        log.warning("Could not find the sessions of uploads %s", upload_ids[:5],
                    exc_info=True)
        return
    refresh_session_records(storage, session_ids)
