"""Issue 10, finding 7: a full disk mid-scan ends the scan `interrupted` with the disk-full
sentence, whichever write hits the full disk first (the frame file or the database), and the
scan resumes to completion once space is freed. The job runs in the test process (as a
work-horse would run it) against the real database, mock rig and hardware lock."""

from __future__ import annotations

from sqlalchemy.exc import OperationalError

from scanner_app.scans import frames as scan_frames
from scanner_app.scans.disk_full import DISK_FULL, disk_full
from scanner_app.scans.pipeline import CapturePipeline
from tests.scans.conftest import Station
from tests.scans.test_scan_job_failures import run_job
from tests.scans.test_scan_worker import assert_frames_consistent, assert_rig_released


def _fail_on_third_frame(monkeypatch, make_error) -> None:
    """The third frame's counter update (inside the frame's one commit) raises make_error()."""
    real_bump = scan_frames.bump_session_counters
    calls: list[int] = []

    def bump(session_id: int, **deltas: int) -> None:
        calls.append(session_id)
        if len(calls) == 3:
            raise make_error(session_id)
        real_bump(session_id, **deltas)

    monkeypatch.setattr(scan_frames, "bump_session_counters", bump)


def _assert_interrupted_for_disk(station: Station, scan_id: int, taken: int, planned: int
                                 ) -> dict:
    stopped = station.scan(scan_id)
    assert stopped["status"] == "interrupted", stopped
    assert stopped["finished_at"] is None  # resumable, not finished
    assert stopped["error"] == (
        f"The scan stopped at frame {taken + 1} of {planned}: {DISK_FULL} The {taken} frames "
        f"taken so far are kept; resume the scan to continue from frame {taken + 1}.")
    assert_frames_consistent(station, stopped, taken)
    assert_rig_released(station, stopped)
    return stopped


def _resume_to_completion(station: Station, scan_id: int, planned: int) -> None:
    assert station.action(scan_id, "resume")["status"] == "queued"
    assert run_job(station, scan_id) == "completed"
    done = station.scan(scan_id)
    assert_frames_consistent(station, done, planned)
    assert [run["first_frame"] for run in station.metadata(done)["runs"]] == [0, 2]


def test_database_full_mid_scan_is_interrupted_with_the_disk_full_sentence(make_station,
                                                                        monkeypatch):
    station = make_station()
    _fail_on_third_frame(monkeypatch, lambda session_id: OperationalError(
        "UPDATE sessions SET captures_count=? WHERE sessions.id = ?", (1, session_id),
        Exception("database or disk is full")))
    scan = station.start_scan(profile="quick", frames=5)
    assert run_job(station, scan["id"]) == "interrupted"
    _assert_interrupted_for_disk(station, scan["id"], taken=2, planned=5)

    monkeypatch.undo()  # space freed
    _resume_to_completion(station, scan["id"], 5)


def test_frame_write_on_a_full_disk_is_interrupted_not_failed(make_station, monkeypatch):
    """The mock camera's fault file says the card is full from the third frame on."""
    station = make_station()
    real_submit = CapturePipeline.submit
    calls: list[int] = []

    def submit_then_fill_the_disk(pipeline: CapturePipeline, frame) -> None:
        # Once the second frame is taken (it is recorded while the platter moves on).
        real_submit(pipeline, frame)
        calls.append(frame.index)
        if len(calls) == 2:
            station.fault("disk-full")

    monkeypatch.setattr(CapturePipeline, "submit", submit_then_fill_the_disk)
    scan = station.start_scan(profile="quick", frames=5)
    assert run_job(station, scan["id"]) == "interrupted"
    _assert_interrupted_for_disk(station, scan["id"], taken=2, planned=5)

    monkeypatch.undo()
    station.fault(None)  # space freed
    _resume_to_completion(station, scan["id"], 5)


def test_disk_full_is_recognised_through_the_layers_that_wrap_it():
    import errno
    import sqlite3

    assert disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert not disk_full(OSError(errno.EACCES, "Permission denied"))
    full = sqlite3.OperationalError("database or disk is full")
    assert disk_full(OperationalError("INSERT", (), full))
    assert not disk_full(OperationalError("INSERT", (), sqlite3.OperationalError("locked")))
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("the camera could not save the frame") from inner
    except RuntimeError as wrapped:
        assert disk_full(wrapped)
