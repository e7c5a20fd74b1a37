"""Listing a session's captures (images), oldest first, a page at a time.

How many there are comes from the session's counters (never a COUNT over captures), and a
page's rows are found by key in the index on (session_id, id) or (session_id, valid, id),
from whichever end is nearer: the last page of 50,000 captures costs what the first does."""

from __future__ import annotations

from sqlalchemy import func, select

from scanner_app.models import Capture
from scanner_app.platform.extensions import db
from scanner_app.platform.web.paging import page_of, page_rows
from scanner_app.sessions.service import get_session

PAGE_SIZE = 100
SOURCES = ("scans", "uploads")  # the session page lists each apart


def list_captures(
    session_id: int, valid: bool | None = None, page: int = 1, per_page: int = PAGE_SIZE,
    source: str | None = None,
) -> tuple[list[Capture], int, int]:
    """Returns (captures, page, pages); pages is at least 1, a page past the last is the
    last. Oldest first (in the order they were recorded). `source` "scans" or "uploads"
    keeps only scan frames or uploaded images (the session page shows them apart); their
    number is counted, as the session's counters do not split them."""
    session = get_session(session_id)
    where = [Capture.session_id == session_id]
    if valid is not None:
        where.append(Capture.valid == valid)
    if source is not None:
        column = Capture.scan_id if source == "scans" else Capture.upload_id
        where.append(column.is_not(None))
        total = db.session.scalar(select(func.count()).select_from(Capture).where(*where))
    elif valid is None:
        total = session.captures_count
    else:
        total = session.valid_count if valid else session.invalid_count
    shown = page_of(max(0, total), max(1, page), per_page)
    rows = page_rows(Capture, where, [Capture.id], [Capture.id.desc()], shown)
    return rows, shown.page, shown.pages
