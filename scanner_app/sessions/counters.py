"""Session counters, kept by atomic SQL increments so that listing sessions never counts
rows and concurrent jobs never lose an update. A change marks session.json for rewriting."""

from __future__ import annotations

from sqlalchemy import update

from scanner_app.models import ScanSession
from scanner_app.models.session import COUNTERS
from scanner_app.platform.clock import utcnow
from scanner_app.platform.extensions import db
from scanner_app.sessions.record import mark_dirty


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
    result = db.session.execute(
        update(ScanSession)
        .where(ScanSession.id == session_id)
        .values(**values, updated_at=utcnow())
    )
    mark_dirty(session_id)  # session.json follows once this transaction commits
    return result.rowcount == 1
