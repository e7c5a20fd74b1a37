"""The station's side of a remote processing worker, on SQLite and PostgreSQL, through the
app's test client: only API keys, the transition table (claim once, reports only while
running), output names and sizes, completed outputs replacing the model folder in one move,
failed and cancelled ones leaving nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanner_app.accounts.service import create_user
from scanner_app.models import Reconstruction, ReconstructionStatus, Scan, ScanStatus
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import StorageManager
from tests.conftest import build_app
from tests.support import api_client, dispose

PASSWORD = "correct horse battery"


@pytest.fixture
def station(data_dir: Path, database_url: str):
    app = build_app(data_dir, database_url, SCANNER_MAX_UPLOAD_MB="1")
    client = api_client(app, "desktop")
    made = client.post("/api/v1/sessions", json={"name": "Remote"}).get_json()
    session_id = (made.get("session") or made)["id"]
    with app.app_context():
        scan = Scan(session_id=session_id, status=ScanStatus.COMPLETED, profile="quick",
                    frames_planned=8, frames_captured=8)
        db.session.add(scan)
        db.session.flush()
        row = Reconstruction(scan_id=scan.id, session_id=session_id,
                             status=ReconstructionStatus.QUEUED, stage="queued", percent=0.0)
        db.session.add(row)
        db.session.commit()
        ids = {"session": session_id, "scan": scan.id, "rid": row.id}
    model_dir = StorageManager(data_dir).reconstruction_dir(session_id, ids["scan"])
    yield app, client, ids, model_dir
    dispose(app)


def _url(ids: dict, what: str) -> str:
    return f"/api/v1/reconstructions/{ids['rid']}/{what}"


def test_a_browser_login_is_refused(station) -> None:
    app, _client, ids, _dir = station
    with app.app_context():
        create_user("ada", PASSWORD)
    browser = app.test_client()
    assert browser.post("/login", data={"name": "ada", "password": PASSWORD}).status_code == 302
    answer = browser.post(_url(ids, "claim"), json={})
    assert answer.status_code == 403
    assert "API key" in answer.get_json()["error"]["message"]
    assert app.test_client().post(_url(ids, "claim"), json={}).status_code == 401


def test_claim_report_upload_and_finish(station) -> None:
    app, client, ids, model_dir = station
    # Reports before the claim: not running.
    assert client.post(_url(ids, "progress"), json={"percent": 5}).status_code == 409
    claimed = client.post(_url(ids, "claim"), json={})
    assert claimed.status_code == 200 and claimed.get_json()["reconstruction"]["status"] == \
        "running"
    assert client.post(_url(ids, "claim"), json={}).status_code == 409  # one worker only

    for bad in ({"percent": 101}, {"percent": "half"}, {"stage": ""}, {"eta_seconds": -1}):
        assert client.post(_url(ids, "progress"), json=bad).status_code == 400, bad
    row = client.post(_url(ids, "progress"), json={"stage": "visual hull", "percent": 40,
                                                   "eta_seconds": 12}).get_json()
    assert (row["reconstruction"]["stage"], row["reconstruction"]["percent"]) == \
        ("visual hull", 40.0)

    for bad in ("run.sh", ".hidden.glb", "a/b/c.txt", "../model.glb", "model.glb.exe"):
        answer = client.put(_url(ids, f"outputs/{bad}"), data=b"x",
                            content_type="application/octet-stream")
        assert answer.status_code in (400, 404), (bad, answer.status_code)
    big = client.put(_url(ids, "outputs/sparse.ply"), data=b"0" * (2 * 1024 * 1024),
                     content_type="application/octet-stream")
    assert big.status_code == 413

    # Finishing before model.glb is there is refused; the old model stays meanwhile.
    model_dir.mkdir(parents=True)
    (model_dir / "model.glb").write_bytes(b"old")
    refused = client.post(_url(ids, "finish"), json={"status": "completed", "metrics": {},
                                                     "outputs": ["model.glb"]})
    assert refused.status_code == 409 and "model.glb" in refused.get_json()["error"]["message"]
    for name, body in (("model.glb", b"glTF new"), ("colmap/cameras.txt", b"# cameras")):
        answer = client.put(_url(ids, f"outputs/{name}"), data=body,
                            content_type="application/octet-stream")
        assert answer.status_code == 201 and answer.get_json()["bytes"] == len(body)
    assert (model_dir / "model.glb").read_bytes() == b"old"
    done = client.post(_url(ids, "finish"), json={
        "status": "completed", "metrics": {"seconds": {"visual hull": 1.0}},
        "outputs": ["model.glb", "colmap/cameras.txt"]}).get_json()["reconstruction"]
    assert done["status"] == "completed" and set(done["outputs"]) == {"model.glb",
                                                                      "colmap/cameras.txt"}
    assert (model_dir / "model.glb").read_bytes() == b"glTF new"
    assert (model_dir / "colmap" / "cameras.txt").read_bytes() == b"# cameras"
    assert client.get(done["outputs"]["model.glb"]).data == b"glTF new"
    assert sorted(p.name for p in model_dir.parent.iterdir()) == [model_dir.name]
    # Over: no more reports or uploads.
    assert client.post(_url(ids, "progress"), json={}).status_code == 409
    assert client.put(_url(ids, "outputs/model.glb"), data=b"late",
                      content_type="application/octet-stream").status_code == 409


def test_failed_and_cancelled_leave_nothing_behind(station) -> None:
    app, client, ids, model_dir = station
    client.post(_url(ids, "claim"), json={})
    client.put(_url(ids, "outputs/model.glb"), data=b"half",
               content_type="application/octet-stream")
    staged = list(model_dir.parent.glob(".*remote"))
    assert len(staged) == 1
    assert client.post(_url(ids, "finish"), json={"status": "failed"}).status_code == 400
    failed = client.post(_url(ids, "finish"), json={
        "status": "failed", "error": "Too few frames: scan again with more."})
    assert failed.get_json()["reconstruction"]["status"] == "failed"
    assert failed.get_json()["reconstruction"]["error"] == "Too few frames: scan again with more."
    assert not staged[0].exists() and not model_dir.exists()

    # A second reconstruction, cancelled by a person while the worker uploads.
    again = client.post(f"/api/v1/scans/{ids['scan']}/reconstruction", json={})
    if again.status_code == 503:  # no Redis in this test: queue it by hand
        with app.app_context():
            row = Reconstruction(scan_id=ids["scan"], session_id=ids["session"],
                                 status=ReconstructionStatus.QUEUED, stage="queued")
            db.session.add(row)
            db.session.commit()
            ids = {**ids, "rid": row.id}
    else:
        ids = {**ids, "rid": again.get_json()["reconstruction"]["id"]}
    client.post(_url(ids, "claim"), json={})
    client.put(_url(ids, "outputs/model.glb"), data=b"half",
               content_type="application/octet-stream")
    assert client.post(_url(ids, "cancel"), json={}).status_code == 202
    stopped = client.post(_url(ids, "progress"), json={"percent": 60})
    assert stopped.status_code == 409
    assert "stop working on it" in stopped.get_json()["error"]["message"]
    assert not list(model_dir.parent.glob(".*remote")) and not model_dir.exists()
    with app.app_context():
        assert json.loads(db.session.get(Reconstruction, ids["rid"]).outputs or "[]") == []
