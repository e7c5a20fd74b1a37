"""Crash recovery at the unit level: which active scans reconcile_stale_scans interrupts,
startup recovery, and resuming an interrupted scan (re-enqueued, one active at a time)."""

from __future__ import annotations

import os
import subprocess
from datetime import timedelta

import redis
from rq import Queue
from rq.job import Job

from scanner_app import create_app
from scanner_app.models import Scan
from scanner_app.platform.clock import utcnow
from scanner_app.platform.extensions import db
from scanner_app.scans.service import reconcile_at_startup, reconcile_stale_scans
from scanner_app.sessions.resolver import resolve_session
from tests.support import free_port


def add_scan(station, status: str, heartbeat_age: float | None, job_id: str = "scan-x",
             frames_captured: int = 2) -> int:
    with station.app.app_context():
        session_id = resolve_session(None)
        heartbeat = None if heartbeat_age is None else utcnow() - timedelta(
            seconds=heartbeat_age)
        scan = Scan(session_id=session_id, status=status, profile="quick", frames_planned=6,
                    frames_captured=frames_captured, source="api", rq_job_id=job_id,
                    heartbeat_at=heartbeat, started_at=utcnow() - timedelta(minutes=5))
        db.session.add(scan)
        db.session.commit()
        return scan.id


def status_of(station, scan_id: int) -> tuple[str, str | None]:
    with station.app.app_context():
        scan = db.session.get(Scan, scan_id)
        return scan.status, scan.error


def reconcile(station) -> list[int]:
    with station.app.app_context():
        return reconcile_stale_scans()


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def started_job(station, job_id: str, pid: int) -> None:
    connection = redis.Redis.from_url(station.redis_url)
    job = Job.create("scanner_app.scans.job.run_scan", args=(1,), id=job_id,
                     connection=connection)
    job.meta.update(pid=pid, host=os.uname().nodename)
    job.save()
    job.set_status("started")


def test_fresh_heartbeat_is_left_alone_and_an_old_one_is_interrupted(make_station,
                                                                      database_url):
    station = make_station(database_url)
    scan_id = add_scan(station, "running", heartbeat_age=1)
    assert reconcile(station) == []
    assert status_of(station, scan_id) == ("running", None)

    with station.app.app_context():
        db.session.get(Scan, scan_id).heartbeat_at = utcnow() - timedelta(seconds=40)
        db.session.commit()
    assert reconcile(station) == [scan_id]
    status, message = status_of(station, scan_id)
    assert status == "interrupted"
    assert "worker running this scan stopped" in message
    assert "resume the scan to continue from frame 3 of 6." in message
    assert reconcile(station) == []  # idempotent


def test_paused_scan_whose_worker_is_gone_is_interrupted(make_station):
    station = make_station()
    scan_id = add_scan(station, "paused", heartbeat_age=60)
    assert reconcile(station) == [scan_id]
    assert status_of(station, scan_id)[0] == "interrupted"


def test_rq_view_decides_between_alive_and_stale(make_station):
    """A dead process on this machine counts at once; a live one is slow, not dead."""
    station = make_station()
    scan_id = add_scan(station, "running", heartbeat_age=12, job_id="scan-alive")
    started_job(station, "scan-alive", os.getpid())
    assert reconcile(station) == []
    with station.app.app_context():
        db.session.get(Scan, scan_id).heartbeat_at = utcnow() - timedelta(seconds=60)
        db.session.commit()
    assert reconcile(station) == []  # its process is still there
    started_job(station, "scan-alive", dead_pid())
    assert reconcile(station) == [scan_id]


def test_job_that_rq_says_ended_interrupts_the_scan(make_station):
    station = make_station()
    scan_id = add_scan(station, "running", heartbeat_age=10, job_id="scan-ended")
    started_job(station, "scan-ended", os.getpid())
    Job.fetch("scan-ended", connection=redis.Redis.from_url(station.redis_url)).set_status(
        "failed")
    assert reconcile(station) == [scan_id]


def test_queued_scan_waits_for_a_worker_but_a_lost_job_is_interrupted(make_station):
    station = make_station()
    scan_id = add_scan(station, "queued", heartbeat_age=120, job_id="scan-waiting",
                       frames_captured=0)
    Queue("hardware", connection=redis.Redis.from_url(station.redis_url)).enqueue(
        "scanner_app.scans.job.run_scan", scan_id, job_id="scan-waiting")
    assert reconcile(station) == []  # no worker yet: it just waits
    redis.Redis.from_url(station.redis_url).flushdb()  # e.g. Redis restarted without data
    assert reconcile(station) == [scan_id]
    assert "lost from the queue" in status_of(station, scan_id)[1]


def test_recently_queued_scan_is_never_touched(make_station):
    station = make_station()
    scan_id = add_scan(station, "queued", heartbeat_age=2, job_id="scan-new",
                       frames_captured=0)
    assert reconcile(station) == []
    assert status_of(station, scan_id)[0] == "queued"


def test_web_startup_and_api_reads_recover_a_dead_scan(make_station):
    station = make_station()
    scan_id = add_scan(station, "running", heartbeat_age=90)
    app = create_app(station.app.config["SCANNER_SETTINGS"])  # what `scanner web` does
    assert status_of(station, scan_id)[0] == "running"  # building an app alone changes nothing
    reconcile_at_startup(app)
    assert status_of(station, scan_id)[0] == "interrupted"

    with station.app.app_context():
        scan = db.session.get(Scan, scan_id)
        scan.status, scan.heartbeat_at = "running", utcnow() - timedelta(seconds=90)
        db.session.commit()
    got = station.scan(scan_id)  # a poll from the UI is enough
    assert got["status"] == "interrupted"


def test_resume_of_interrupted_scan_requeues_it_and_respects_one_active_scan(make_station):
    station = make_station()
    scan_id = add_scan(station, "interrupted", heartbeat_age=90, job_id="scan-old")
    resumed = station.action(scan_id, "resume")
    assert resumed["status"] == "queued" and resumed["error"] is None
    job_ids = Queue("hardware", connection=redis.Redis.from_url(station.redis_url)).job_ids
    assert len(job_ids) == 1 and job_ids[0].startswith(f"scan-{scan_id}-resume-")

    # Another interrupted scan cannot be resumed while this one is queued.
    with station.app.app_context():
        db.session.get(Scan, scan_id).status = "queued"
        other = Scan(session_id=resumed["session_id"], status="interrupted", profile="quick",
                     frames_planned=4, source="api")
        db.session.add(other)
        db.session.commit()
        other_id = other.id
    response = station.client.post(f"/api/v1/scans/{other_id}/resume")
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "scan_active"

    # An interrupted scan can also be given up.
    cancelled = station.action(other_id, "cancel")
    assert cancelled["status"] == "cancelled"


def test_resume_with_redis_down_is_503_and_stays_interrupted(make_station):
    station = make_station(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    scan_id = add_scan(station, "interrupted", heartbeat_age=90, job_id="scan-old")
    with station.app.app_context():
        db.session.get(Scan, scan_id).error = "The worker running this scan stopped."
        db.session.commit()
    response = station.client.post(f"/api/v1/scans/{scan_id}/resume")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "queue_unavailable"
    assert status_of(station, scan_id) == ("interrupted", "The worker running this scan stopped.")
