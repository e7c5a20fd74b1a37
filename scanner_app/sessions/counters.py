"""Session counters, kept by atomic SQL increments so that listing sessions never counts
rows and concurrent jobs never lose an update. A change marks session.json for rewriting.

New work (a scan started, files uploaded) reactivates a completed session here too, under
the row lock the increment takes: the resolver reactivated it already, but a session can be
completed between the resolver's commit and this transaction (a day's auto session is
completed once the day is over, sessions/day_end.py)."""

from __future__ import annotations

from sqlalchemy import update

from scanner_app.models import ScanSession, SessionStatus
from scanner_app.models.session import COUNTERS
from scanner_app.models.transitions import transition
from scanner_app.platform.clock import utcnow
from scanner_app.platform.extensions import db
from scanner_app.sessions.record import mark_dirty

# The counters that count new work (a scan, an uploaded file); frames and extracted images
# belong to work already counted, so they never reopen a session someone completed.
NEW_WORK = frozenset({"scans_count", "files_count"})


def bump_session_counters(session_id: int, **deltas: int) -> bool:
    """Add deltas, e.g. bump_session_counters(7, captures_count=1, valid_count=1).
    Runs in the caller's transaction (and takes the session row's write lock); the caller
    commits. False when the session is gone."""
    unknown = set(deltas) - set(COUNTERS)
    if unknown:
        raise ValueError(f"unknown session counters: {sorted(unknown)}")
    values = {name: getattr(ScanSession, name) + delta for name, delta in deltas.items() if delta}
    if not values:
        return True
    now = utcnow()
    stmt = update(ScanSession).where(ScanSession.id == session_id).values(**values,
                                                                          updated_at=now)
    mark_dirty(session_id)  # session.json follows once this transaction commits
    if not any(deltas.get(name, 0) > 0 for name in NEW_WORK):
        return db.session.execute(stmt).rowcount == 1  # a frame: the statement as it was
    # The status comes back with the increment: reactivating costs a statement only when the
    # session is in fact completed.
    status = db.session.execute(stmt.returning(ScanSession.status)).scalar()
    if status is None:
        return False
    if status is SessionStatus.COMPLETED:
        transition(ScanSession, session_id, SessionStatus.ACTIVE,
                   from_=SessionStatus.COMPLETED, updated_at=now)
    return True
