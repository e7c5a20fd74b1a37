"""Paging through a station's history (issue 15), on SQLite and PostgreSQL: sessions and
captures a page at a time, pages walked from either end agreeing with the whole list, totals
over all sessions, name search, per_page bounds; and that the queries are the cheap ones
(the captures count comes from the counters, rows are found by key)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import event

from scanner_app.models import Capture, Scan, ScanSession, SessionStatus
from scanner_app.platform.extensions import db
from scanner_app.sessions.counters import bump_session_counters

START = datetime(2026, 1, 1, 9, 0, 0)


def error_code(response) -> str:
    body = response.get_json()
    assert body["error"]["message"].endswith(".")
    return body["error"]["code"]


def add_sessions(app, names: list[str], *, same_time_every: int = 0,
                 counters: bool = True) -> list[int]:
    """Manual sessions, in this order oldest to newest, with counters of their own (or
    zeros). With same_time_every=k, each k sessions share one created_at (ties: by id)."""
    ids = []
    with app.app_context():
        for n, name in enumerate(names):
            at = START + timedelta(minutes=n // same_time_every if same_time_every else n)
            c = n if counters else 0
            session = ScanSession(kind="manual", day=date(2026, 1, 1), name=name,
                                  status=SessionStatus.ACTIVE, files_count=c, captures_count=2 * c,
                                  valid_count=c, invalid_count=c, scans_count=int(counters),
                                  created_at=at, updated_at=at)
            db.session.add(session)
            db.session.flush()
            ids.append(session.id)
        db.session.commit()
    return ids


def walk(client, url: str, per_page: int) -> tuple[list[dict], list[dict]]:
    first = client.get(f"{url}{'&' if '?' in url else '?'}per_page={per_page}").get_json()
    pages = [first]
    for page in range(2, first["pages"] + 1):
        pages.append(client.get(
            f"{url}{'&' if '?' in url else '?'}per_page={per_page}&page={page}").get_json())
    return first, pages


def test_session_pages_walked_from_both_ends_are_the_whole_list_newest_first(app, client):
    # 130 sessions, created in threes at the same moment: pages 1 and 2 are found from the
    # start of the list, page 3 from its end; together they must be every session once.
    ids = add_sessions(app, [f"Trial {n:03d}" for n in range(130)], same_time_every=3)
    first, pages = walk(client, "/api/v1/sessions", 50)
    assert (first["page"], first["pages"], first["per_page"], first["total"]) == (1, 3, 50, 130)
    assert [len(p["sessions"]) for p in pages] == [50, 50, 30]
    assert [p["page"] for p in pages] == [1, 2, 3]
    listed = [s["id"] for p in pages for s in p["sessions"]]
    assert listed == list(reversed(ids))  # newest first, ties by id, none twice or missing
    expected = {"files_count": sum(range(130)), "captures_count": 2 * sum(range(130)),
                "valid_count": sum(range(130)), "invalid_count": sum(range(130)),
                "scans_count": 130}
    assert all(p["totals"] == expected for p in pages)
    # A page past the last answers the last; per_page is capped at 200.
    past = client.get("/api/v1/sessions?per_page=50&page=9").get_json()
    assert past["page"] == 3 and [s["id"] for s in past["sessions"]] == listed[100:]
    capped = client.get("/api/v1/sessions?per_page=201").get_json()
    assert capped["per_page"] == 200 and len(capped["sessions"]) == 130
    assert [s["id"] for s in capped["sessions"]] == listed
    for odd in (1, 7, 49, 64):  # page sizes that split the list unevenly
        _first, pages = walk(client, "/api/v1/sessions", odd)
        assert [s["id"] for p in pages for s in p["sessions"]] == listed, odd


def test_bad_page_arguments_are_refused_with_a_sentence(app, client):
    add_sessions(app, ["One"])
    for query in ("page=0", "page=-2", "per_page=0", "per_page=x", "page=1.5", "page=１"):
        response = client.get(f"/api/v1/sessions?{query}")
        assert response.status_code == 400, query
        assert error_code(response) == "invalid_page"


def test_search_pages_only_matching_names_with_totals_over_all(app, client):
    names = [f"Bowl {n}" for n in range(7)] + ["Straße 1", "STRASSE 2", "Other"]
    ids = add_sessions(app, names)
    first, pages = walk(client, "/api/v1/sessions?q=bOwL", 3)
    assert (first["total"], first["pages"]) == (7, 3)
    assert [s["name"] for p in pages for s in p["sessions"]] == [f"Bowl {n}"
                                                                for n in range(6, -1, -1)]
    everything = client.get("/api/v1/sessions").get_json()
    assert first["totals"] == everything["totals"]  # totals: all sessions, not the matches
    folded = client.get("/api/v1/sessions?q=strasse").get_json()  # ß folds to ss
    assert [s["id"] for s in folded["sessions"]] == [ids[8], ids[7]]
    spaced = client.get("/api/v1/sessions?q=%20bowl%20%20%206%20").get_json()
    assert [s["name"] for s in spaced["sessions"]] == ["Bowl 6"]
    none = client.get("/api/v1/sessions?q=nothing-like-it").get_json()
    assert (none["sessions"], none["total"], none["page"], none["pages"]) == ([], 0, 1, 1)


def add_captures(app, session_id: int, valid: list[bool]) -> list[int]:
    """Captures of one scan, counted in the session as the scan job counts them."""
    with app.app_context():
        scan = Scan(session_id=session_id, status="completed", profile="quick",
                    frames_planned=len(valid), frames_captured=len(valid), source="api")
        db.session.add(scan)
        db.session.flush()
        ids = []
        for index, ok in enumerate(valid):
            capture = Capture(session_id=session_id, scan_id=scan.id, frame_index=index,
                              path=f"images/scans/{scan.id}/frame_{index:04d}.jpg", valid=ok,
                              angle_deg=float(index))
            db.session.add(capture)
            db.session.flush()
            ids.append(capture.id)
        bump_session_counters(session_id, captures_count=len(valid), valid_count=sum(valid),
                              invalid_count=len(valid) - sum(valid))
        db.session.commit()
    return ids


def test_capture_pages_from_both_ends_cover_every_capture_oldest_first(app, client):
    other, session_id = add_sessions(app, ["Other", "Big"], counters=False)
    valid = [n % 4 != 3 for n in range(23)]
    add_captures(app, other, [True, False, True])  # another session's rows never show
    ids = add_captures(app, session_id, valid)
    url = f"/api/v1/sessions/{session_id}/captures"
    first, pages = walk(client, url, 5)
    assert (first["page"], first["pages"], first["per_page"]) == (1, 5, 5)
    assert [len(p["captures"]) for p in pages] == [5, 5, 5, 5, 3]
    assert [c["id"] for p in pages for c in p["captures"]] == ids
    for wanted, flag in ((True, "true"), (False, "false")):
        expected = [i for i, ok in zip(ids, valid, strict=True) if ok is wanted]
        _first, pages = walk(client, f"{url}?valid={flag}", 4)
        got = [c["id"] for p in pages for c in p["captures"]]
        assert got == expected and all(c["valid"] is wanted for p in pages
                                       for c in p["captures"])
    last = client.get(f"{url}?per_page=5&page=99").get_json()
    assert last["page"] == 5 and [c["id"] for c in last["captures"]] == ids[20:]


def test_capture_pages_of_an_empty_session_and_an_empty_filter(app, client):
    empty, only_valid = add_sessions(app, ["Empty", "All good"], counters=False)
    add_captures(app, only_valid, [True, True])
    body = client.get(f"/api/v1/sessions/{empty}/captures?page=3").get_json()
    assert (body["captures"], body["page"], body["pages"]) == ([], 1, 1)
    none = client.get(f"/api/v1/sessions/{only_valid}/captures?valid=false").get_json()
    assert (none["captures"], none["page"], none["pages"]) == ([], 1, 1)
    assert client.get("/api/v1/sessions/999999/captures").status_code == 404
    assert error_code(client.get(f"/api/v1/sessions/{empty}/captures?valid=yes")) \
        == "bad_request"


def test_capture_pages_never_count_captures(app, client):
    """The count of pages comes from the session's counters: a page never runs COUNT over
    the captures table, and its rows are read by key (id IN (...))."""
    (session_id,) = add_sessions(app, ["Counted"], counters=False)
    add_captures(app, session_id, [True] * 12)
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(" ".join(statement.lower().split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        for page in (1, 2, 3):
            assert client.get(f"/api/v1/sessions/{session_id}/captures?per_page=5"
                              f"&page={page}").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    on_captures = [s for s in statements if "from captures" in s]
    assert len(on_captures) == 3, on_captures  # one query a page
    assert not any("count(" in s for s in on_captures), on_captures
