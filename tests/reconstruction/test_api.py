"""The reconstruction API without a processing worker: what is refused and why (404, 409,
503), a queued reconstruction cancelled at once with its RQ job, and the scan page's panel."""

from __future__ import annotations

import pytest
import redis
from rq.job import Job

from scanner_app.models import Scan, ScanStatus
from scanner_app.platform.extensions import db
from scanner_app.platform.queues import PROCESSING_QUEUE, RECONSTRUCTION_JOB
from tests.conftest import build_app
from tests.reconstruction.conftest import Station
from tests.support import api_client, dispose, free_port


@pytest.fixture(scope="module")
def station(tmp_path_factory, redis_url: str):
    station = Station(tmp_path_factory.mktemp("api"), redis_url)
    yield station
    station.close()


_made = iter(range(1, 1000))


def _scan(station: Station, status: ScanStatus) -> int:
    body = station.post("/api/v1/sessions", 201, name=f"recon {status} {next(_made)}")
    session = body.get("session", body)
    with station.app.app_context():
        scan = Scan(session_id=session["id"], status=status, profile="quick",
                    frames_planned=24, frames_captured=24)
        db.session.add(scan)
        db.session.commit()
        return scan.id


def test_unknown_scan_is_404_and_unfinished_scan_is_409(station) -> None:
    assert station.post("/api/v1/scans/999999/reconstruction", 404)["error"]["code"]
    failed = _scan(station, ScanStatus.FAILED)
    body = station.post(f"/api/v1/scans/{failed}/reconstruction", 409)
    assert body["error"]["message"] == (f"Scan {failed} is failed; a model can be built once "
                                        "the scan has completed.")
    station.get(f"/api/v1/scans/{failed}/reconstruction", 404)


def test_queued_reconstruction_is_listed_on_its_queue_and_cancelled_at_once(station) -> None:
    scan_id = _scan(station, ScanStatus.COMPLETED)
    row = station.post(f"/api/v1/scans/{scan_id}/reconstruction")["reconstruction"]
    assert {k: row[k] for k in ("scan_id", "status", "percent", "outputs", "error")} == {
        "scan_id": scan_id, "status": "queued", "percent": 0.0, "outputs": {}, "error": None}
    connection = redis.Redis.from_url(station.env["SCANNER_REDIS_URL"])
    job = Job.fetch(f"reconstruction-{row['id']}", connection=connection)
    assert job.func_name == RECONSTRUCTION_JOB and job.args == (row["id"],)
    assert job.origin == PROCESSING_QUEUE
    assert station.get(f"/api/v1/scans/{scan_id}/reconstruction")["reconstruction"]["id"] == \
        row["id"]
    cancelled = station.post(f"/api/v1/reconstructions/{row['id']}/cancel")["reconstruction"]
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    assert job.get_status(refresh=True) == "canceled"
    # Finished: it can be neither cancelled again nor downloaded from.
    station.post(f"/api/v1/reconstructions/{row['id']}/cancel", 409)
    station.get(f"/api/v1/reconstructions/{row['id']}/files/model.glb", 404)
    # And a new one may start.
    station.post(f"/api/v1/scans/{scan_id}/reconstruction")


def test_unreachable_queue_is_503_and_leaves_nothing(tmp_path) -> None:
    app = build_app(tmp_path, None, SCANNER_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    try:
        client = api_client(app)
        body = client.post("/api/v1/sessions", json={"name": "no redis"}).get_json()
        session = body.get("session", body)
        with app.app_context():
            scan = Scan(session_id=session["id"], status=ScanStatus.COMPLETED, profile="quick",
                        frames_planned=1, frames_captured=1)
            db.session.add(scan)
            db.session.commit()
            scan_id = scan.id
        response = client.post(f"/api/v1/scans/{scan_id}/reconstruction", json={})
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "queue_unavailable"
        assert client.get(f"/api/v1/scans/{scan_id}/reconstruction").status_code == 404
    finally:
        dispose(app)


def test_anonymous_requests_get_401(station) -> None:
    anonymous = station.app.test_client()
    assert anonymous.post("/api/v1/scans/1/reconstruction", json={}).status_code == 401
    assert anonymous.get("/api/v1/reconstructions/1").status_code == 401


def test_scan_page_panel_offers_the_build_and_loads_model_viewer_from_here(station) -> None:
    scan_id = _scan(station, ScanStatus.COMPLETED)
    html = station.client.get(f"/scans/{scan_id}/model",
                              headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Build 3D model" in html and 'name="csrf_token"' in html
    page = station.client.get(f"/scans/{scan_id}").get_data(as_text=True)
    assert f'hx-get="/scans/{scan_id}/model"' in page


def test_a_merge_moves_reconstructions_with_their_scans(station) -> None:
    from scanner_app.models import Reconstruction, ReconstructionStatus

    scan_id = _scan(station, ScanStatus.COMPLETED)
    with station.app.app_context():
        source = db.session.get(Scan, scan_id).session_id
        row = Reconstruction(scan_id=scan_id, session_id=source,
                             status=ReconstructionStatus.FAILED)
        db.session.add(row)
        db.session.commit()
        row_id = row.id
    body = station.post("/api/v1/sessions", 201, name=f"merge target {next(_made)}")
    target = body.get("session", body)["id"]
    station.post(f"/api/v1/sessions/{source}/merge", 200, into=target)
    moved = station.get(f"/api/v1/reconstructions/{row_id}")["reconstruction"]
    assert moved["session_id"] == target and moved["scan_id"] == scan_id
