"""Reading scans: one by id, the active one, a session's list. Whoever looks at a scan whose
worker died sees it interrupted (lazy recovery). Re-exported by scans/service.py."""

from __future__ import annotations

from sqlalchemy import select, text

from scanner_app.models import SCAN_ACTIVE, Scan
from scanner_app.models.statuses import sql_in
from scanner_app.platform.errors import NotFound
from scanner_app.platform.extensions import db
from scanner_app.scans.recovery import recently_alive, reconcile_stale_scans
from scanner_app.sessions.service import get_session

# The predicate of the partial index uq_scans_one_active, as literal SQL: a bound IN-list
# cannot be matched to the index, and the query would read the whole scans table.
ACTIVE_SCAN = text(f"scans.station = 1 AND scans.{sql_in('status', SCAN_ACTIVE)}")


def get_scan(scan_id: int) -> Scan:
    scan = db.session.get(Scan, scan_id)
    if scan is None:
        raise NotFound(f"There is no scan {scan_id}. Pick one from the session's scan list.")
    if scan.status.is_active and not recently_alive(scan):
        # Lazy recovery: whoever looks at a scan whose worker died sees it interrupted.
        if reconcile_stale_scans([scan.id]):
            db.session.refresh(scan)
    return scan


def active_scan() -> Scan | None:
    """The scan that is queued, running or paused (at most one), after recovering a dead one."""
    scan = db.session.scalar(select(Scan).where(ACTIVE_SCAN))
    if scan is not None and not recently_alive(scan) and reconcile_stale_scans([scan.id]):
        scan = db.session.scalar(select(Scan).where(ACTIVE_SCAN))
    return scan


def list_scans(session_id: int) -> list[Scan]:
    """A session's scans, newest first."""
    get_session(session_id)
    return list(db.session.scalars(
        select(Scan).where(Scan.session_id == session_id)
        .order_by(Scan.created_at.desc(), Scan.id.desc())
    ))
