"""A scan is refused (409, with a sentence) while a calibration from the page is queued or
running: it would wait on the `hardware` queue behind the calibration and then run with the
ChArUco board still on the platter. A queued calibration job in a real Redis (no worker takes
it) is enough; once the calibration has ended, scans start again. SQLite and PostgreSQL."""

from __future__ import annotations

import redis
from sqlalchemy import func, select

from scanner_app.models import Scan
from scanner_app.platform.extensions import db
from scanner_app.scans.calibration_run import calibration_run, start_calibration
from scanner_app.scans.service import mark_interrupted

SENTENCE = "A calibration is running; start the scan when it has finished."


def _scan_rows(station) -> int:
    with station.app.app_context():
        return db.session.scalar(select(func.count()).select_from(Scan))


def _queue_calibration(station) -> str:
    with station.app.app_context():
        run = start_calibration(6)
        assert calibration_run().status.is_active  # its job waits in Redis
        return run.job_id


def test_a_scan_waits_for_a_queued_calibration(make_station, database_url) -> None:
    station = make_station(database_url)
    job_id = _queue_calibration(station)

    refused = station.client.post("/api/v1/scans", json={"profile": "quick", "frames": 4})
    assert refused.status_code == 409, refused.get_json()
    assert refused.get_json()["error"] == {"code": "calibration_active", "message": SENTENCE}
    assert _scan_rows(station) == 0  # nothing was left behind

    # The calibration's job leaves the queue (as when it has ended): scans start again.
    redis.Redis.from_url(station.redis_url).delete(f"rq:job:{job_id}")
    started = station.client.post("/api/v1/scans", json={"profile": "quick", "frames": 4})
    assert started.status_code == 202, started.get_json()
    assert _scan_rows(station) == 1


def test_an_interrupted_scan_is_not_resumed_during_a_calibration(make_station,
                                                                 database_url) -> None:
    station = make_station(database_url)
    scan = station.start_scan(profile="quick", frames=4)  # no worker: it stays queued
    with station.app.app_context():
        assert mark_interrupted(scan["id"], None, "test: its worker died")
    _queue_calibration(station)

    refused = station.client.post(f"/api/v1/scans/{scan['id']}/resume")
    assert refused.status_code == 409, refused.get_json()
    assert refused.get_json()["error"]["message"] == SENTENCE
    assert station.scan(scan["id"])["status"] == "interrupted"
