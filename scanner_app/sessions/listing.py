"""Sessions a few at a time, however many years a station has piled up: a page of the list,
the most recent ones, and a name search for the pickers. Nothing here loads every session;
totals over all sessions are summed again only when a session changed (sessions/totals.py).
Re-exported by sessions/service.py."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select, text

from scanner_app.models import ScanSession
from scanner_app.models.session import SESSION_IS_ACTIVE
from scanner_app.platform.errors import BadRequest
from scanner_app.platform.extensions import db
from scanner_app.platform.web.paging import Page, page_of, page_rows
from scanner_app.sessions.totals import count_and_totals

NEWEST_FIRST = (ScanSession.created_at.desc(), ScanSession.id.desc())
OLDEST_FIRST = (ScanSession.created_at, ScanSession.id)
PICKER_LIMIT = 20  # a picker shows at most this many matches: type more to narrow it
MAX_QUERY_LENGTH = 200


@dataclass(frozen=True)
class SessionPage:
    sessions: list[ScanSession]
    shown: Page  # page, pages, per_page and total (sessions matching the search)
    totals: dict[str, int]  # counters summed over all sessions, not only the matching ones
    query: str


def name_key(text: str) -> str:
    """What a search compares: any case, whitespace runs as one space."""
    return " ".join(text.split()).casefold()


def session_totals() -> dict[str, int]:
    """Counters summed over all sessions ("All sessions")."""
    return count_and_totals()[1]


def _filters(active_only: bool, exclude: Iterable[int]) -> list:
    where = []
    if active_only:  # literal: the partial index ix_sessions_active_newest answers it
        where.append(text(f"sessions.{SESSION_IS_ACTIVE}"))
    excluded = [i for i in exclude if i is not None]
    if excluded:
        where.append(ScanSession.id.not_in(excluded))
    return where


def matching_ids(query: str, *, limit: int | None = None, active_only: bool = False,
                 exclude: Iterable[int] = ()) -> list[int]:
    """Ids of the sessions whose name holds `query` (any case), newest first. Reads ids and
    names only, and stops at `limit`; the comparison is Python's casefold (SQLite's lower()
    folds ASCII only)."""
    key = name_key(query)
    found: list[int] = []
    rows = db.session.execute(
        select(ScanSession.id, ScanSession.name)
        .where(*_filters(active_only, exclude)).order_by(*NEWEST_FIRST)
        .execution_options(yield_per=500)
    )
    for session_id, name in rows:
        if key in name_key(name):
            found.append(session_id)
            if limit is not None and len(found) >= limit:
                break
    rows.close()
    return found


def _by_ids(ids: list[int]) -> list[ScanSession]:
    if not ids:
        return []
    rows = {s.id: s for s in db.session.scalars(select(ScanSession).where(ScanSession.id.in_(ids)))}
    return [rows[i] for i in ids if i in rows]


def search_sessions(query: str = "", *, limit: int = PICKER_LIMIT, active_only: bool = False,
                    exclude: Iterable[int] = ()) -> list[ScanSession]:
    """At most `limit` sessions, newest first, whose name holds `query` (all when blank)."""
    exclude = list(exclude)
    if not name_key(query):
        return list(db.session.scalars(
            select(ScanSession).where(*_filters(active_only, exclude))
            .order_by(*NEWEST_FIRST).limit(limit)
        ))
    return _by_ids(matching_ids(query, limit=limit, active_only=active_only, exclude=exclude))


def page_sessions(page: int = 1, per_page: int = 50, query: str = "") -> SessionPage:
    """One page of sessions, newest first (only those whose name holds `query`, if given),
    with totals over all sessions. A page past the last one shows the last one."""
    query = name_key(query)
    count, totals = count_and_totals()
    if not query:
        shown = page_of(count, page, per_page)
        rows = page_rows(ScanSession, [], NEWEST_FIRST, OLDEST_FIRST, shown)
        return SessionPage(rows, shown, totals, query)
    ids = matching_ids(query)
    shown = page_of(len(ids), page, per_page)
    return SessionPage(_by_ids(ids[shown.offset:shown.offset + per_page]), shown, totals, query)


# A picker's purpose: (its form field, active sessions only).
PICKERS = {"current": ("session_id", True), "merge": ("into", False),
           "upload": ("session_id", False)}


def picker_context(purpose: str, query: str = "", session_id: int | None = None, *,
                   current: ScanSession | None = None) -> dict:
    """What a session picker offers (templates/sessions/partials/_picker.html): at most
    PICKER_LIMIT sessions, newest first, whose name holds `query`. `purpose` is "current"
    (active sessions but the `current` one), "merge" (every session but
    `session_id`) or "upload" (every session; `session_id`, if there is one, listed first
    and chosen)."""
    if purpose not in PICKERS:
        raise BadRequest("Ask for the sessions of a picker: purpose=current, merge or upload.")
    field, active_only = PICKERS[purpose]
    current_id = current.id if current is not None else None
    exclude = {"current": [current_id], "merge": [session_id]}.get(purpose, [])
    found = search_sessions(query, active_only=active_only, exclude=exclude)
    chosen = None
    if purpose == "upload" and session_id is not None:
        chosen = db.session.get(ScanSession, session_id)
        if chosen is not None:
            found = [chosen] + [s for s in found if s.id != chosen.id][:PICKER_LIMIT - 1]
    return {"purpose": purpose, "field": field, "query": query, "sessions": found,
            "chosen_id": chosen.id if chosen else None, "session_id": session_id,
            "current": current, "limit": PICKER_LIMIT}
