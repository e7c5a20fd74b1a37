"""The worker leaves the rig safe (issue 10, findings 3 and 12): a killed work-horse has the motor
driver switched off by its worker and its scan marked interrupted by the handler the scan job
registered; an idle worker switches the rig off once; job log lines carry their ids.

Real parts: `scanner worker` as a process on the station's private Redis, the mock rig whose
simulated platter records in a file whether the motor is energised."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

from hal.mock.platter import MockPlatter
from scanner_app.models import Scan
from scanner_app.platform.extensions import db
from scanner_app.platform.log_context import LOG_FORMAT, LogIdsFilter, bind_log_ids, log_ids
from scanner_app.platform.queues import SCAN_JOB, horse_killed_handlers, redis_connection
from tests.runtime.procs import descendants, parent_of, pid_alive
from tests.support import Proc, api_client, cli, process_env, wait_until


def _scan(app, scan_id: int) -> Scan:
    with app.app_context():
        scan = db.session.get(Scan, scan_id)
        db.session.expunge(scan)
        return scan


def test_a_killed_work_horse_has_the_motor_switched_off_and_its_scan_interrupted(
        sqlite_app, data_dir: Path, private_redis):
    settings = sqlite_app.config["SCANNER_SETTINGS"]
    platter = MockPlatter(settings.hal.platter_file)
    worker = Proc(cli("worker", "--queues", "hardware"), process_env(data_dir))
    try:
        worker.wait_line("Listening on hardware", 60)
        client = api_client(sqlite_app)
        answer = client.post("/api/v1/scans", json={"frames": 40})
        assert answer.status_code == 202, answer.get_json()
        scan_id = answer.get_json()["scan"]["id"]
        wait_until(lambda: _scan(sqlite_app, scan_id).frames_captured >= 2, 60,
                   "the scan to take 2 frames")
        [horse] = [p for p in descendants(worker.popen.pid)
                   if parent_of(p) == worker.popen.pid]
        # Freeze the horse and leave the motor energised, as a horse killed mid-move (or
        # holding the platter for the scan) leaves it; then kill it.
        os.kill(horse, signal.SIGSTOP)
        platter.energise(True)
        os.kill(horse, signal.SIGKILL)

        wait_until(lambda: not platter.state().energised, 15, "the motor to be switched off")
        scan = wait_until(lambda: (s := _scan(sqlite_app, scan_id)).status == "interrupted"
                          and s, 15, "the scan to read interrupted")
        assert "killed by signal 9" in (scan.error or "") + (scan.message or ""), scan.error
        worker.wait_line("Rig switched off (the work-horse of job", 5)
        assert worker.popen.poll() is None  # the worker itself carries on
    finally:
        worker.kill()


def test_a_killed_worker_takes_its_work_horse_along_without_any_supervisor(
        sqlite_app, data_dir: Path, private_redis):
    """As under systemd: `scanner worker` alone, killed with SIGKILL mid-scan. Its work-horse
    (in a process group of its own, re-parented away) must stop the scan and exit. A scan
    worker starting after such a death switches the rig off first."""
    platter = MockPlatter(sqlite_app.config["SCANNER_SETTINGS"].hal.platter_file)
    platter.energise(True)  # as a killed predecessor may have left it
    worker = Proc(cli("worker", "--queues", "hardware"), process_env(data_dir))
    try:
        worker.wait_line("Listening on hardware", 60)
        assert not platter.state().energised
        worker.wait_line("Rig switched off (the scan worker is starting)", 5)
        client = api_client(sqlite_app)
        answer = client.post("/api/v1/scans", json={"frames": 40})
        assert answer.status_code == 202, answer.get_json()
        scan_id = answer.get_json()["scan"]["id"]
        wait_until(lambda: _scan(sqlite_app, scan_id).frames_captured >= 2, 60,
                   "the scan to take 2 frames")
        [horse] = [p for p in descendants(worker.popen.pid)
                   if parent_of(p) == worker.popen.pid]
        os.kill(worker.popen.pid, signal.SIGKILL)
        wait_until(lambda: not pid_alive(horse), 15, "the work-horse to die with its worker")
        scan = wait_until(lambda: (s := _scan(sqlite_app, scan_id)).status != "running" and s,
                          30, "the scan to stop running")
        assert scan.status == "interrupted", (scan.status, scan.error)
        assert scan.frames_captured < 40
    finally:
        worker.kill()


def test_the_scan_job_registers_its_own_killed_handler():
    import scanner_app.runtime.worker  # noqa: F401 - importing the worker loads every job kind

    names = [h.__name__ for h in horse_killed_handlers(SCAN_JOB)]
    assert names == ["scan_horse_killed"]


def test_an_idle_worker_switches_the_rig_off_once(sqlite_app, data_dir: Path, private_redis,
                                                   monkeypatch):
    from scanner_app.runtime.worker import StationWorker

    monkeypatch.setenv("SCANNER_IDLE_OFF_SECONDS", "30")
    settings = sqlite_app.config["SCANNER_SETTINGS"]
    platter = MockPlatter(settings.hal.platter_file)
    platter.energise(True)  # as a crashed process would leave it
    worker = StationWorker(["hardware"], connection=redis_connection(settings), app=sqlite_app,
                           name="idle-test")
    assert worker.idle_off_seconds == 30
    now = time.monotonic()
    worker.last_job_ended = now - 29
    assert not worker.switch_off_when_idle(now)
    assert platter.state().energised
    worker.last_job_ended = now - 31
    assert worker.switch_off_when_idle(now)
    assert not platter.state().energised
    platter.energise(True)
    assert not worker.switch_off_when_idle(now + 60)  # once per idle period
    assert platter.state().energised


def test_a_worker_for_uploads_only_never_touches_the_rig(sqlite_app, private_redis,
                                                         monkeypatch):
    from scanner_app.runtime.worker import StationWorker

    monkeypatch.setenv("SCANNER_IDLE_OFF_SECONDS", "1")
    settings = sqlite_app.config["SCANNER_SETTINGS"]
    platter = MockPlatter(settings.hal.platter_file)
    platter.energise(True)  # a scan worker elsewhere holds the motor
    worker = StationWorker(["uploads"], connection=redis_connection(settings), app=sqlite_app,
                           name="uploads-only")
    worker.last_job_ended = time.monotonic() - 3600
    assert not worker.switch_off_when_idle()
    assert platter.state().energised


def test_log_lines_carry_session_and_scan_ids(caplog):
    handler = logging.StreamHandler()
    handler.addFilter(LogIdsFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    record = logging.LogRecord("scanner.scan_job", logging.INFO, __file__, 1, "frame %s", (3,),
                               None)
    with log_ids(session=12, scan=40):
        handler.filter(record)
        assert handler.format(record).endswith("scanner.scan_job session=12 scan=40: frame 3")
        assert record.log_ids == {"session": 12, "scan": 40}
    outside = logging.LogRecord("x", logging.INFO, __file__, 1, "idle", (), None)
    handler.filter(outside)
    assert handler.format(outside).endswith("x: idle")
    bind_log_ids(upload=7)
    try:
        handler.filter(outside)
        assert outside.ids == " upload=7"
    finally:
        bind_log_ids(upload=None)


def test_uploads_processed_in_a_request_leave_no_upload_id_on_later_lines(sqlite_client):
    """With no queue, a request processes its files itself; the upload id it logs with must
    not stay bound to the thread (it showed up on an unrelated test's log line)."""
    from scanner_app.platform.log_context import current_log_ids
    from tests.uploads.helpers import image_bytes, post_files

    assert post_files(sqlite_client, [("a.jpg", image_bytes(seed=3))]).status_code == 201
    assert "upload" not in current_log_ids()
