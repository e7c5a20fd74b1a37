"""metadata/session.json: the one writer of a session's record on disk.

The database holds the truth; session.json is a copy that exports ship. Whoever changes a
session (counters, name, status, a new session) calls `mark_dirty(session_id)` inside its
transaction; once that transaction commits, each dirty session's record is written once, from
a fresh read of the committed row. A rolled-back transaction writes nothing. A record is
never written for a session whose folder is gone (deleted or merged away meanwhile), unless
the caller asked for the folder to be made (`create=True`, for a session just created).

`batched()` holds the writes of several commits until its block ends (an upload run commits
once per file but writes each session's record once per run).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator

from flask import has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from scanner_app.config import current_settings
from scanner_app.models import ScanSession
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import StorageManager, atomic_write_json

# Every process that changes a session imports this module: the import registers what bumps
# the "sessions changed" stamp after such a commit (the totals cache, sessions/totals.py).
from scanner_app.sessions import totals as _totals  # noqa: F401

log = logging.getLogger("scanner.sessions")

_PENDING = "scanner.session_records.pending"  # in Session.info: {session id: create?}
_BATCH = "scanner.session_records.batch"  # in Session.info while batched() holds writes


def mark_dirty(session_id: int, *, create: bool = False) -> None:
    """Write this session's record after the current transaction commits."""
    pending: dict[int, bool] = db.session.info.setdefault(_PENDING, {})
    pending[int(session_id)] = pending.get(int(session_id), False) or create


@contextlib.contextmanager
def batched() -> Iterator[None]:
    """Hold record writes of every commit in this block; write each session once at the end."""
    info = db.session.info
    if _BATCH in info:  # nested: the outer block writes
        yield
        return
    info[_BATCH] = {}
    try:
        yield
    finally:
        held = info.pop(_BATCH, {})
        write_records(held)


def write_records(records: dict[int, bool] | Iterable[int]) -> int:
    """Write these sessions' records now from their committed rows (`{id: create}` or ids).
    Never raises: a record that could not be written is written again by the next change or
    by `scanner doctor --repair`. Returns how many were written."""
    wanted = records if isinstance(records, dict) else dict.fromkeys(records, False)
    if not wanted:
        return 0
    if not has_app_context():
        log.warning("Session records %s not written: no app context", sorted(wanted))
        return 0
    store = StorageManager(current_settings().data_dir)
    written = 0
    # A session of its own: the caller's may be mid-commit (after_commit) or hold stale rows.
    with Session(bind=db.engine) as reader:
        for session_id, create in sorted(wanted.items()):
            try:
                row = reader.get(ScanSession, session_id)
                if row is not None and _write(store, row.to_dict(), create):
                    written += 1
            except Exception:  # noqa: BLE001 - e.g. a full disk; the database is fine
                log.warning("Could not write the record of session %s", session_id,
                            exc_info=True)
    return written


def _write(store: StorageManager, record: dict, create: bool) -> bool:
    if create:
        store.ensure_session_dir(record["id"])
    path = store.session_record_path(record["id"])
    if not path.parent.is_dir():
        return False  # deleted or merged away: never make its folder again
    try:
        atomic_write_json(path, record)
    except FileNotFoundError:
        return False  # removed between the check and the write
    return True


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    batch = session.info.get(_BATCH)
    if batch is not None:
        for session_id, create in pending.items():
            batch[session_id] = batch.get(session_id, False) or create
        return
    write_records(pending)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)  # nothing changed, nothing to write
