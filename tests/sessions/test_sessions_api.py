"""The sessions part of the JSON API, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from scanner_app.models import Capture, Scan, ScanSession, Upload
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import StorageManager
from scanner_app.sessions.counters import bump_session_counters
from scanner_app.sessions.resolver import resolve_session


def error_code(response) -> str:
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"].endswith(".")  # a sentence for a person
    return body["error"]["code"]


def create(client, name, **extra):
    return client.post("/api/v1/sessions", json={"name": name, **extra})


def test_empty_station_lists_nothing_and_zero_totals(client):
    body = client.get("/api/v1/sessions").get_json()
    assert body == {"sessions": [], "totals": {
        "files_count": 0, "captures_count": 0, "valid_count": 0, "invalid_count": 0,
        "scans_count": 0}, "page": 1, "pages": 1, "per_page": 50, "total": 0}
    current = client.get("/api/v1/sessions/current").get_json()
    assert current == {"mode": "auto", "session": None}


def test_created_session_becomes_current_and_has_a_directory(client, data_dir):
    response = create(client, "  Trial   ABC-123 ")
    assert response.status_code == 201
    session = response.get_json()["session"]
    assert session["name"] == "Trial ABC-123"
    assert session["kind"] == "manual" and session["status"] == "active"
    current = client.get("/api/v1/sessions/current").get_json()
    assert current["mode"] == "manual" and current["session"]["id"] == session["id"]
    root = data_dir / "sessions" / str(session["id"])
    assert sorted(p.name for p in root.iterdir()) == ["exports", "images", "metadata"]
    record = json.loads((root / "metadata" / "session.json").read_text())
    assert record["name"] == "Trial ABC-123"


def test_make_current_false_keeps_auto_mode(client):
    assert create(client, "Side job", make_current=False).status_code == 201
    assert client.get("/api/v1/sessions/current").get_json()["mode"] == "auto"


@pytest.mark.parametrize("name,code", [
    ("", "invalid_name"), ("   ", "invalid_name"), (None, "invalid_name"), (42, "invalid_name"),
    ("x" * 121, "invalid_name"), ("Session 2026-11-21", "invalid_name"),
])
def test_bad_names_are_refused(client, name, code):
    response = create(client, name)
    assert response.status_code == 400
    assert error_code(response) == code
    assert client.get("/api/v1/sessions").get_json()["sessions"] == []


def test_name_of_exactly_120_characters_is_fine(client):
    assert create(client, "y" * 120).status_code == 201


def test_duplicate_name_is_409(client):
    assert create(client, "Trial").status_code == 201
    response = create(client, "Trial")
    assert response.status_code == 409
    assert error_code(response) == "name_in_use"


def test_non_json_body_is_400(client):
    response = client.post("/api/v1/sessions", data="name=x",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert error_code(response) == "invalid_json"


def test_unknown_ids_are_404(client):
    for method, path in [("get", "/api/v1/sessions/999"), ("patch", "/api/v1/sessions/999"),
                         ("delete", "/api/v1/sessions/999")]:
        response = getattr(client, method)(path, json={})
        assert response.status_code == 404, path
        assert error_code(response) == "not_found"
    response = client.put("/api/v1/sessions/current", json={"session_id": 999})
    assert response.status_code == 404


def test_put_current_switches_between_manual_and_auto(client, app):
    trial = create(client, "Trial", make_current=False).get_json()["session"]
    body = client.put("/api/v1/sessions/current", json={"session_id": trial["id"]}).get_json()
    assert body["mode"] == "manual" and body["session"]["id"] == trial["id"]
    body = client.put("/api/v1/sessions/current", json={"session_id": None}).get_json()
    assert body == {"mode": "auto", "session": None}
    with app.app_context():
        auto_id = resolve_session()
    body = client.get("/api/v1/sessions/current").get_json()
    assert body["mode"] == "auto" and body["session"]["id"] == auto_id
    assert body["session"]["name"] == f"Session {datetime.now(UTC).date().isoformat()}"


def test_patch_renames_completes_and_reactivates(client):
    trial = create(client, "Trial").get_json()["session"]
    other = create(client, "Other", make_current=False).get_json()["session"]
    renamed = client.patch(f"/api/v1/sessions/{trial['id']}", json={"name": "Trial 2"})
    assert renamed.status_code == 200 and renamed.get_json()["session"]["name"] == "Trial 2"
    clash = client.patch(f"/api/v1/sessions/{trial['id']}", json={"name": "Other"})
    assert clash.status_code == 409
    done = client.patch(f"/api/v1/sessions/{trial['id']}", json={"status": "completed"})
    assert done.get_json()["session"]["status"] == "completed"
    # A completed trial stops receiving work: new work goes to today's session again.
    assert client.get("/api/v1/sessions/current").get_json()["mode"] == "auto"
    again = client.patch(f"/api/v1/sessions/{trial['id']}", json={"status": "active"})
    assert again.get_json()["session"]["status"] == "active"
    bad = client.patch(f"/api/v1/sessions/{other['id']}", json={"status": "archived"})
    assert bad.status_code == 400
    bad = client.patch(f"/api/v1/sessions/{other['id']}", json={"kind": "auto"})
    assert bad.status_code == 400


def test_explicit_id_reactivates_a_completed_session(client, app):
    trial = create(client, "Trial").get_json()["session"]
    client.patch(f"/api/v1/sessions/{trial['id']}", json={"status": "completed"})
    with app.app_context():
        assert resolve_session(trial["id"]) == trial["id"]
    assert client.get(f"/api/v1/sessions/{trial['id']}").get_json()["session"]["status"] == "active"


def test_completed_auto_session_is_reused_and_reactivated(client, app, data_dir):
    with app.app_context():
        first = resolve_session()
    client.patch(f"/api/v1/sessions/{first}", json={"status": "completed"})
    with app.app_context():
        assert resolve_session() == first
        assert db.session.scalar(select(func.count()).select_from(ScanSession)) == 1
    assert client.get(f"/api/v1/sessions/{first}").get_json()["session"]["status"] == "active"
    assert StorageManager(data_dir).session_dir_ids() == [first]


def test_auto_session_day_follows_the_station_time_zone(data_dir):
    from tests.conftest import build_app

    app = build_app(data_dir, None, SCANNER_TIMEZONE="Pacific/Kiritimati")  # UTC+14
    late_utc = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)  # already 2 March there
    with app.app_context():
        session = db.session.get(ScanSession, resolve_session(now=late_utc))
        assert session.day.isoformat() == "2026-03-02"
        assert session.name == "Session 2026-03-02"


def _add_work(app, session_id: int, data_dir, label: str) -> int:
    """A scan (with its metadata file), an upload and a capture with a file each, as the jobs
    would leave them. Returns the scan id."""
    store = StorageManager(data_dir)
    with app.app_context():
        scan = Scan(session_id=session_id, status="completed", profile="quick", frames_planned=1,
                    frames_captured=1, source="api")
        upload = Upload(session_id=session_id, filename=f"{label}.jpg", status="done")
        db.session.add_all([scan, upload])
        db.session.flush()
        frame = store.scan_images_dir(session_id, scan.id) / "frame_000.jpg"
        frame.parent.mkdir(parents=True)
        frame.write_bytes(label.encode())
        (store.upload_dir(session_id, upload.id)).mkdir(parents=True)
        (store.upload_dir(session_id, upload.id) / f"{label}.jpg").write_bytes(b"u")
        db.session.add(Capture(session_id=session_id, scan_id=scan.id, frame_index=0, valid=True,
                               path=str(frame.relative_to(store.session_dir(session_id)))))
        bump_session_counters(session_id, scans_count=1, files_count=1, captures_count=1,
                              valid_count=1)
        db.session.commit()
        store.scan_metadata_path(session_id, scan.id).write_text(
            json.dumps({"scan": scan.to_dict(), "frames": []}))
        return scan.id


def test_merge_moves_rows_files_and_counters(client, app, data_dir):
    a = create(client, "A").get_json()["session"]["id"]
    b = create(client, "B").get_json()["session"]["id"]
    _add_work(app, a, data_dir, "a")
    b_scan = _add_work(app, b, data_dir, "b")
    (data_dir / "sessions" / str(a) / "exports" / "scan.zip").write_bytes(b"za")
    (data_dir / "sessions" / str(b) / "exports" / "scan.zip").write_bytes(b"zb")
    response = client.post(f"/api/v1/sessions/{a}/merge", json={"into": b})
    assert response.status_code == 200
    merged = response.get_json()["session"]
    assert merged["id"] == b
    assert (merged["scans_count"], merged["files_count"], merged["captures_count"]) == (2, 2, 2)
    assert client.get(f"/api/v1/sessions/{a}").status_code == 404
    assert not (data_dir / "sessions" / str(a)).exists()
    root = data_dir / "sessions" / str(b)
    assert len(list((root / "images" / "scans").iterdir())) == 2
    assert len(list((root / "images" / "uploads").iterdir())) == 2
    assert sorted(p.name for p in (root / "exports").iterdir()) == [
        f"from-session-{a}-scan.zip", "scan.zip"]
    [moved_meta] = [p for p in (root / "metadata" / "scans").iterdir()
                    if json.loads(p.read_text())["scan"]["id"] != b_scan]
    assert json.loads(moved_meta.read_text())["scan"]["session_id"] == b
    with app.app_context():
        for capture in db.session.scalars(select(Capture)):
            assert capture.session_id == b
            assert (root / capture.path).is_file()
    # The merged source was current; the target takes its place.
    assert client.get("/api/v1/sessions/current").get_json()["session"]["id"] == b


def test_merge_bad_input(client):
    a = create(client, "A").get_json()["session"]["id"]
    response = client.post(f"/api/v1/sessions/{a}/merge", json={"into": a})
    assert response.status_code == 400 and error_code(response) == "merge_into_self"
    assert client.post(f"/api/v1/sessions/{a}/merge", json={"into": 999}).status_code == 404
    assert client.post("/api/v1/sessions/999/merge", json={"into": a}).status_code == 404
    assert client.post(f"/api/v1/sessions/{a}/merge", json={}).status_code == 400
    assert client.get(f"/api/v1/sessions/{a}").status_code == 200


def _snapshot(app, data_dir):
    with app.app_context():
        rows = [(c.id, c.session_id, c.path) for c in db.session.scalars(select(Capture))]
        sessions = [(s.id, s.files_count, s.scans_count)
                    for s in db.session.scalars(select(ScanSession).order_by(ScanSession.id))]
    files = sorted(str(p.relative_to(data_dir)) for p in (data_dir / "sessions").rglob("*")
                   if not p.name.endswith(".tmp"))
    return rows, sessions, files


def test_failed_merge_leaves_database_and_disk_as_they_were(client, app, data_dir, monkeypatch):
    import os

    import scanner_app.sessions.service as sessions_service

    a = create(client, "A").get_json()["session"]["id"]
    b = create(client, "B").get_json()["session"]["id"]
    _add_work(app, a, data_dir, "a")
    before = _snapshot(app, data_dir)
    calls = {"n": 0}
    real_rename = os.rename

    def failing_rename(src, dst):  # the disk fails after the first entry moved
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(5, "Input/output error")
        return real_rename(src, dst)

    monkeypatch.setattr(sessions_service.os, "rename", failing_rename)
    with pytest.raises(OSError):
        with app.test_request_context():
            sessions_service.merge_sessions(a, b)
    monkeypatch.undo()
    assert _snapshot(app, data_dir) == before


def test_delete_removes_row_and_directory(client, app, data_dir):
    a = create(client, "A").get_json()["session"]["id"]
    _add_work(app, a, data_dir, "a")
    assert client.delete(f"/api/v1/sessions/{a}").status_code == 204
    assert client.get(f"/api/v1/sessions/{a}").status_code == 404
    assert list((data_dir / "sessions").iterdir()) == []
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Capture)) == 0
    assert client.get("/api/v1/sessions/current").get_json()["mode"] == "auto"


def test_delete_refused_while_a_scan_of_it_runs(client, app, data_dir):
    a = create(client, "A").get_json()["session"]["id"]
    with app.app_context():
        db.session.add(Scan(session_id=a, status="running", profile="quick", frames_planned=3))
        db.session.commit()
    response = client.delete(f"/api/v1/sessions/{a}")
    assert response.status_code == 409 and error_code(response) == "scan_running"
    assert (data_dir / "sessions" / str(a) / "metadata" / "session.json").exists()


def test_failed_delete_keeps_row_and_directory(client, app, data_dir, monkeypatch):
    a = create(client, "A").get_json()["session"]["id"]
    _add_work(app, a, data_dir, "a")
    before = _snapshot(app, data_dir)

    def failing_commit():
        raise RuntimeError("database went away")

    with app.test_request_context():
        import scanner_app.sessions.service as sessions_service

        monkeypatch.setattr(db.session, "commit", failing_commit)
        with pytest.raises(RuntimeError):
            sessions_service.delete_session(a)
        monkeypatch.undo()
    assert _snapshot(app, data_dir) == before


def test_totals_add_up_session_counters(client, app, data_dir):
    a = create(client, "A").get_json()["session"]["id"]
    b = create(client, "B").get_json()["session"]["id"]
    _add_work(app, a, data_dir, "a")
    _add_work(app, b, data_dir, "b")
    body = client.get("/api/v1/sessions").get_json()
    assert [s["name"] for s in body["sessions"]] == ["B", "A"]  # newest first
    assert body["totals"]["scans_count"] == 2 and body["totals"]["valid_count"] == 2


def test_each_resolution_logs_one_clear_line(app, caplog):
    """A new (or reactivated) session is news (INFO); reusing one is not, and happens on every
    request, so its line is DEBUG (issue 15: no INFO line per call)."""
    caplog.set_level("DEBUG", logger="scanner.sessions")
    with app.app_context():
        first = resolve_session()
        resolve_session()
    records = [r for r in caplog.records if r.name == "scanner.sessions"]
    assert [r.getMessage() for r in records] == [
        f"Session resolver: created new today's auto session {first}",
        f"Session resolver: reused existing today's auto session {first}",
    ]
    assert [r.levelname for r in records] == ["INFO", "DEBUG"]


def test_body_over_the_size_limit_is_413_with_the_error_body(data_dir):
    from tests.conftest import build_app
    from tests.support import api_client

    app = build_app(data_dir, None, SCANNER_MAX_UPLOAD_MB="1")
    response = api_client(app).post("/api/v1/sessions", data=b"x" * (1024 * 1024 + 1),
                                    content_type="application/json")
    assert response.status_code == 413
    assert error_code(response) == "too_large"


def test_sessions_are_paged_and_searched_with_totals_over_all(client):
    for name in ("Trial Alpha", "Trial Beta", "Other", "trial gamma"):
        assert create(client, name, make_current=False).status_code == 201
    page = client.get("/api/v1/sessions?per_page=3&page=2").get_json()
    assert [s["name"] for s in page["sessions"]] == ["Trial Alpha"]  # newest first
    assert (page["page"], page["pages"], page["per_page"], page["total"]) == (2, 2, 3, 4)
    found = client.get("/api/v1/sessions?q=TRIAL").get_json()
    assert [s["name"] for s in found["sessions"]] == ["trial gamma", "Trial Beta", "Trial Alpha"]
    assert found["total"] == 3 and found["totals"] == page["totals"]  # totals: all sessions
    capped = client.get("/api/v1/sessions?per_page=5000").get_json()
    assert capped["per_page"] == 200
    for query in ("page=0", "per_page=x", "page=１"):
        assert error_code(client.get(f"/api/v1/sessions?{query}")) == "invalid_page"
