"""Listing a session's captures (images), oldest first, a page at a time.

How many there are comes from the session's counters (never a COUNT over captures), and a
page's rows are found by key in the index on (session_id, id) or (session_id, valid, id),
from whichever end is nearer: the last page of 50,000 captures costs what the first does."""

from __future__ import annotations

from scanner_app.models import Capture
from scanner_app.platform.web.paging import page_of, page_rows
from scanner_app.sessions.service import get_session

PAGE_SIZE = 100


def list_captures(
    session_id: int, valid: bool | None = None, page: int = 1, per_page: int = PAGE_SIZE
) -> tuple[list[Capture], int, int]:
    """Returns (captures, page, pages); pages is at least 1, a page past the last is the
    last. Oldest first (in the order they were recorded)."""
    session = get_session(session_id)
    where = [Capture.session_id == session_id]
    if valid is None:
        total = session.captures_count
    else:
        where.append(Capture.valid == valid)
        total = session.valid_count if valid else session.invalid_count
    shown = page_of(max(0, total), max(1, page), per_page)
    rows = page_rows(Capture, where, [Capture.id], [Capture.id.desc()], shown)
    return rows, shown.page, shown.pages
