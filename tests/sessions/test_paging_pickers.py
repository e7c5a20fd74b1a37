"""Session pickers that search as you type instead of listing every session (issue 15), on
SQLite and PostgreSQL: the dashboard's current-session picker, the session page's merge
picker and the upload page's; the paged /sessions list; the upload batch poll's one query;
and active_scan() answered from the partial index."""

from __future__ import annotations

import re

from sqlalchemy import event

from scanner_app.models import Scan, Upload
from scanner_app.platform.extensions import db
from scanner_app.sessions import service
from tests.sessions.test_paging import add_sessions

HX = {"HX-Request": "true"}
OPTION = re.compile(r'<option value="(\d*)"( selected)?>([^<]*)</option>')


def options(html: str) -> list[tuple[str, str]]:
    """(value, label) of each <option>."""
    return [(value, label) for value, _selected, label in OPTION.findall(html)]


def test_current_picker_offers_the_newest_active_sessions_and_searches(app, client):
    ids = add_sessions(app, [f"Trial {n:02d}" for n in range(30)] + ["Bowl", "Old bowl"])
    with app.app_context():
        service.update_session(ids[31], {"status": "completed"})  # "Old bowl"
        service.set_current_session(ids[29])  # "Trial 29"
    page = client.get("/").get_data(as_text=True)
    offered = options(page)
    assert len(offered) == service.PICKER_LIMIT  # not every session
    assert offered[0] == (str(ids[30]), "Bowl")  # newest first, current and completed left out
    # (The dashboard's recent-sessions list may name it; the picker's options do not.)
    assert (str(ids[29]), "Trial 29") not in offered
    assert not any("Old bowl" in label for _value, label in offered)
    assert 'data-picker-search' in page and 'hx-get="/sessions/picker?purpose=current' in page
    found = client.get("/sessions/picker?purpose=current&q=BOWL", headers=HX)
    assert found.status_code == 200
    assert options(found.get_data(as_text=True)) == [(str(ids[30]), "Bowl")]
    some = options(client.get("/sessions/picker?purpose=current&q=trial%200",
                              headers=HX).get_data(as_text=True))
    assert [label for _v, label in some] == [f"Trial 0{n}" for n in range(9, -1, -1)]
    none = client.get("/sessions/picker?purpose=current&q=zebra", headers=HX)
    html = none.get_data(as_text=True)
    assert options(html) == [("", "No session's name holds “zebra”")]
    assert "required" in html  # the empty choice cannot be sent as "back to today"


def test_picking_from_the_search_makes_a_session_current(app, client):
    ids = add_sessions(app, ["Alpha", "Beta"])
    answer = client.post("/current", data={"session_id": str(ids[0]), "q": "alp"}, headers=HX)
    assert answer.status_code == 200 and "Alpha" in answer.get_data(as_text=True)
    assert client.get("/api/v1/sessions/current").get_json()["session"]["id"] == ids[0]


def test_merge_picker_leaves_out_the_session_itself(app, client):
    ids = add_sessions(app, ["Source bowl", "Target bowl", "Other"])
    page = client.get(f"/sessions/{ids[0]}").get_data(as_text=True)
    assert options(page) == [(str(ids[2]), "Other"), (str(ids[1]), "Target bowl")]
    assert 'name="into"' in page
    found = client.get(f"/sessions/picker?purpose=merge&session_id={ids[0]}&q=bowl", headers=HX)
    assert options(found.get_data(as_text=True)) == [(str(ids[1]), "Target bowl")]


def test_upload_picker_lists_the_linked_session_first_even_when_old(app, client):
    ids = add_sessions(app, [f"Day {n:02d}" for n in range(25)])
    page = client.get(f"/upload?session_id={ids[0]}").get_data(as_text=True)
    assert f'<option value="{ids[0]}" selected>Day 00</option>' in page
    offered = options(page)
    assert offered[0][0] == "" and offered[0][1].startswith("Current: ")
    assert offered[1] == (str(ids[0]), "Day 00") and len(offered) == 1 + service.PICKER_LIMIT
    searched = client.get("/sessions/picker?purpose=upload&q=day%2024", headers=HX)
    assert options(searched.get_data(as_text=True))[1:] == [(str(ids[24]), "Day 24")]


def test_picker_asked_for_nothing_known_is_a_sentence(app, client):
    answer = client.get("/sessions/picker?purpose=everything", headers=HX)
    assert answer.status_code == 400
    assert b"purpose=current, merge or upload." in answer.data
    plain = client.get("/sessions/picker?purpose=current&q=x")
    assert plain.status_code == 302 and plain.headers["Location"].startswith("/sessions")


def test_sessions_index_is_paged_with_search(app, client):
    ids = add_sessions(app, [f"Run {n:03d}" for n in range(120)])
    first = client.get("/sessions").get_data(as_text=True)
    rows = re.findall(r'data-session-id="(\d+)"', first)
    assert rows == [str(i) for i in reversed(ids[-50:])]
    assert "Page 1 of 3" in first and "120 in total" in first
    assert 'href="/sessions?page=2"' in first
    last = client.get("/sessions?page=3", headers=HX).get_data(as_text=True)
    assert last.lstrip().startswith('<section id="session-list"')
    assert re.findall(r'data-session-id="(\d+)"', last) == [str(i) for i in reversed(ids[:20])]
    found = client.get("/sessions?q=run%2011", headers=HX).get_data(as_text=True)
    assert len(re.findall(r'data-session-id="', found)) == 10 and "10 matching" in found
    assert "Page 1 of 1" in found
    assert "No session's name holds" in client.get("/sessions?q=zzz").get_data(as_text=True)
    assert client.get("/sessions?page=x").status_code == 400


def test_batch_poll_reads_all_uploads_in_one_query(app, client):
    (session_id,) = add_sessions(app, ["Polled"])
    with app.app_context():
        uploads = [Upload(session_id=session_id, filename=f"{n}.jpg", stored_name=f"{n}.jpg",
                          size=10, status="processing") for n in range(30)]
        db.session.add_all(uploads)
        db.session.commit()
        ids = [u.id for u in uploads]
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(" ".join(statement.lower().split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        answer = client.get(f"/uploads/batch?ids={','.join(map(str, ids))}", headers=HX)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert re.findall(r'data-upload-id="(\d+)"', html) == [str(i) for i in ids]  # order asked
    assert len([s for s in statements if "from uploads" in s]) == 1, statements
    assert not any("from sessions order by" in s or "limit" in s and "from sessions" in s
                   for s in statements)  # the poll renders no session picker
    gone = client.get(f"/uploads/batch?ids={ids[0]},999999", headers=HX)
    assert gone.status_code == 404 and b"There is no upload 999999" in gone.data


def test_active_scan_is_found_through_the_partial_index(sqlite_app):
    """A bound IN-list cannot be matched to uq_scans_one_active's predicate: the query read
    the whole scans table. The literal predicate searches the index."""
    from scanner_app.scans.service import active_scan

    statements: list[tuple[str, object]] = []
    with sqlite_app.app_context():
        engine = db.engine

        def record(_conn, _cursor, statement, parameters, *_args) -> None:
            statements.append((statement, parameters))

        (session_id,) = add_sessions(sqlite_app, ["Scanned"])
        db.session.add(Scan(session_id=session_id, status="completed", profile="quick",
                            frames_planned=1, source="api"))
        db.session.commit()
        event.listen(engine, "before_cursor_execute", record)
        try:
            assert active_scan() is None
        finally:
            event.remove(engine, "before_cursor_execute", record)
        (statement, parameters), = [s for s in statements if "FROM scans" in s[0]]
        plan = db.session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}",
                                                       tuple(parameters))
        details = " ".join(str(row[-1]) for row in plan)
        assert "uq_scans_one_active" in details, details
