"""Failure paths of the scan job that a worker process cannot be made to hit on cue: the job
runs here, in the test process (as a worker's work-horse would run it), against the real
database, mock rig and hardware lock, while other processes play their parts."""

from __future__ import annotations

import logging
import subprocess
import sys

from sqlalchemy.exc import OperationalError

from scanner_app.scans import frames as scan_frames
from scanner_app.scans import job as scan_job
from tests.scans.conftest import Station
from tests.scans.test_scan_worker import assert_frames_consistent, assert_rig_released
from tests.support import PROJECT_ROOT

HOLD_LOCK = """
import sys
from pathlib import Path
from scanner_app.platform.hardware_lock import hardware_lock
with hardware_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    sys.stdin.read()
"""


def run_job(station: Station, scan_id: int) -> str:
    with station.app.app_context():
        return scan_job.run_scan(scan_id)


def test_hardware_held_by_another_process_interrupts_the_scan_with_a_sentence(
        make_station, monkeypatch):
    station = make_station()
    monkeypatch.setattr(scan_job, "LOCK_WAIT_SECONDS", 0.5)  # the worker waits 20 s
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(station.data_dir)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              env=station.env, cwd=PROJECT_ROOT)
    try:
        assert holder.stdout.readline() == b"locked\n"
        scan = station.start_scan(profile="quick", frames=3)
        assert run_job(station, scan["id"]) == "interrupted"
    finally:
        holder.stdin.close()
        holder.wait(10)

    refused = station.scan(scan["id"])
    assert refused["status"] == "interrupted" and refused["frames_captured"] == 0
    assert refused["error"] == (
        f"Another process is using the scanner hardware (process {holder.pid}), so the scan "
        "could not start. Wait until it is done (or stop it), then resume the scan.")

    # The lock is free again: a worker takes the resumed scan (and skips its stale first job).
    station.start_worker()
    assert station.action(scan["id"], "resume")["status"] == "queued"
    done = station.wait_for_status(scan["id"], "completed")
    assert_frames_consistent(station, done, 3)
    assert_rig_released(station, done)


def test_unexpected_error_is_logged_in_full_and_told_as_a_sentence(make_station, monkeypatch,
                                                                   caplog):
    station = make_station()
    real_bump = scan_frames.bump_session_counters
    calls = []

    def failing_bump(session_id: int, **deltas: int) -> None:
        calls.append(session_id)
        if len(calls) == 3:  # the third frame's commit: a database outage
            raise OperationalError("UPDATE sessions SET captures_count=? WHERE sessions.id = ?",
                                   (1, session_id), Exception("disk I/O error"))
        real_bump(session_id, **deltas)

    monkeypatch.setattr(scan_frames, "bump_session_counters", failing_bump)
    scan = station.start_scan(profile="quick", frames=5)
    # Directly on the job's logger: the migrations' logging setup replaced the root's handlers.
    job_log = logging.getLogger("scanner.scan_job")
    job_log.addHandler(caplog.handler)
    try:
        assert run_job(station, scan["id"]) == "interrupted"
    finally:
        job_log.removeHandler(caplog.handler)

    stopped = station.scan(scan["id"])
    assert stopped["error"] == (
        "An unexpected error stopped the scan at frame 3 of 5; the details are in the "
        "worker's log. The 2 frames taken so far are kept; resume the scan to continue from "
        "frame 3, or start a new scan.")
    logged = [r for r in caplog.records if r.exc_info]
    assert logged and "UPDATE sessions" in caplog.text and "Traceback" in caplog.text
    assert_frames_consistent(station, stopped, 2)  # the half-recorded frame left no file

    monkeypatch.setattr(scan_frames, "bump_session_counters", real_bump)
    assert station.action(scan["id"], "resume")["status"] == "queued"
    assert run_job(station, scan["id"]) == "completed"
    done = station.scan(scan["id"])
    assert_frames_consistent(station, done, 5)
    assert [run["first_frame"] for run in station.metadata(done)["runs"]] == [0, 2]


def test_stop_flag_of_the_worker_stops_the_job_before_its_first_frame(make_station,
                                                                      monkeypatch):
    """What the work-horse does when its worker recorded a stop before the horse could
    catch the signal: the flag file alone stops the scan."""
    station = make_station()
    flag = station.data_dir / "worker-stop" / "w1"
    flag.parent.mkdir()
    flag.touch()
    monkeypatch.setattr(scan_job, "stop_flag", flag)
    monkeypatch.setattr(scan_job, "STOP_REQUESTED", type(scan_job.STOP_REQUESTED)())
    scan = station.start_scan(profile="quick", frames=4)
    assert run_job(station, scan["id"]) == "interrupted"
    stopped = station.scan(scan["id"])
    assert stopped["frames_captured"] == 0
    assert stopped["error"].startswith("The scan stopped before its first frame: The worker "
                                       "was stopped during the scan.")
