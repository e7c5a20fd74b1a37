"""The capture pipeline (issue 15): frames are recorded by a thread behind the camera, in
order, each counted only once committed; the scan's metadata is appended per frame to a JSON
Lines log and consolidated into metadata/scans/<id>.json at pause and at the end; pause,
cancel and failures drain the pipeline; a work-horse killed with frames taken but not yet
recorded resumes with every frame at its true angle exactly once."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from scanner_app.scans import frames as scan_frames
from scanner_app.scans import job as scan_job
from scanner_app.scans.metadata import append_line, consolidate, read_frames_log, read_metadata
from scanner_app.scans.recovery import mark_interrupted
from tests.scans.conftest import Station
from tests.scans.test_scan_worker import assert_frames_consistent, assert_rig_released
from tests.support import PROJECT_ROOT, wait_until

CONTRACT_KEYS = {"scan", "profile", "rig", "frames"}


def metadata_paths(station: Station, scan: dict) -> tuple[Path, Path]:
    folder = station.session_dir(scan["session_id"]) / "metadata" / "scans"
    return folder / f"{scan['id']}.json", folder / f"{scan['id']}.frames.jsonl"


def scan_captures(station: Station, scan: dict) -> list[dict]:
    return [c for c in station.captures(scan["session_id"]) if c["scan_id"] == scan["id"]]


def assert_true_angles_once(station: Station, scan: dict, frames: int) -> None:
    """Every frame recorded exactly once, in order (captures are listed oldest first), at its
    true angle, and the consolidated file says the same."""
    captures = scan_captures(station, scan)
    assert [c["angle_deg"] for c in captures] == [i * 360 / frames for i in range(frames)]
    assert [c["path"].rsplit("/", 1)[-1] for c in captures] == [
        f"frame_{i:04d}.jpg" for i in range(frames)]
    json_path, log_path = metadata_paths(station, scan)
    meta = json.loads(json_path.read_text())
    assert CONTRACT_KEYS <= set(meta)
    assert [f["index"] for f in meta["frames"]] == list(range(frames))
    assert [f["angle"] for f in meta["frames"]] == [c["angle_deg"] for c in captures]
    assert not log_path.exists()  # consolidated: the log is folded in and gone


def test_frames_recorded_in_order_and_metadata_appended_not_rewritten(make_station,
                                                                       database_url):
    station = make_station(database_url)
    station.start_worker()
    frames = 12
    scan = station.start_scan(profile="quick", frames=frames)
    json_path, log_path = metadata_paths(station, scan)
    seen: list[tuple[int, int, int, int, int, list[int]]] = []

    def observe():
        before = station.scan(scan["id"])["frames_captured"]
        try:
            log_stat, json_stat = log_path.stat(), json_path.stat()
            raw = log_path.read_bytes()
            # A line being appended can show torn (it crossed a page), as to any reader of
            # a running scan's log: only whole lines count, as in read_frames_log.
            lines = raw[:raw.rfind(b"\n") + 1].splitlines()
        except FileNotFoundError:
            log_stat = None
        now = station.scan(scan["id"])
        # Read after the files: fewer than all frames recorded means the end's
        # consolidation had not begun when they were looked at.
        if log_stat is not None and now["frames_captured"] < frames:
            seen.append((before, log_stat.st_ino, log_stat.st_size,
                         json_stat.st_ino, json_stat.st_mtime_ns,
                         [json.loads(line)["index"] for line in lines]))
        return now["status"] == "completed"

    wait_until(observe, 90, "the scan to complete", interval=0.01)
    counted = sorted({s[0] for s in seen})
    assert len(counted) >= 3, f"too few looks at the running scan: {counted}"
    # One log file, only ever growing: appended, never rewritten.
    assert len({s[1] for s in seen}) == 1
    sizes = [s[2] for s in seen]
    assert sizes == sorted(sizes) and len(set(sizes)) >= 3
    # The JSON file was not touched while frames were recorded.
    assert len({(s[3], s[4]) for s in seen}) == 1
    for captured, *_, indices in seen:
        # Lines in the order taken; a frame's line is on disk before it counts.
        assert indices == list(range(len(indices))) and len(indices) >= captured

    done = station.scan(scan["id"])
    assert_frames_consistent(station, done, frames)
    assert_true_angles_once(station, done, frames)
    assert_rig_released(station, done)
    meta = station.metadata(done)
    assert meta["scan"]["status"] == "completed" and meta["scan"]["frames_captured"] == frames
    entry = meta["frames"][5]
    assert {"angle", "time", "file", "camera", "mask", "pose"} <= set(entry)
    times = [f["time"] for f in meta["frames"]]
    assert times == sorted(times)


def test_pause_and_cancel_drain_the_pipeline(make_station):
    station = make_station()
    station.start_worker()
    frames = 16
    scan = station.start_scan(profile="quick", frames=frames)
    station.wait_for_scan(scan["id"], lambda s: s["frames_captured"] >= 2, "2 frames in")
    station.action(scan["id"], "pause")
    paused = station.wait_for_status(scan["id"], "paused")
    taken = paused["frames_captured"]
    # Paused: every frame the camera took is recorded, and the contract file holds them all.
    assert_frames_consistent(station, paused, taken)
    json_path, log_path = metadata_paths(station, paused)
    meta = json.loads(json_path.read_text())
    assert meta["scan"]["status"] == "paused" and meta["scan"]["frames_captured"] == taken
    assert not log_path.exists()

    station.action(scan["id"], "resume")
    station.wait_for_scan(scan["id"], lambda s: s["frames_captured"] >= taken + 2,
                          "2 more frames")
    station.action(scan["id"], "cancel")
    done = station.wait_for_status(scan["id"], "cancelled")
    assert taken + 2 <= done["frames_captured"] < frames
    assert_frames_consistent(station, done, done["frames_captured"])
    assert_true_angles_once_partial(station, done, frames)
    assert_rig_released(station, done)


def assert_true_angles_once_partial(station: Station, scan: dict, planned: int) -> None:
    count = scan["frames_captured"]
    captures = scan_captures(station, scan)
    assert [c["angle_deg"] for c in captures] == [i * 360 / planned for i in range(count)]
    json_path, log_path = metadata_paths(station, scan)
    assert [f["index"] for f in json.loads(json_path.read_text())["frames"]] == list(
        range(count))
    assert not log_path.exists()


STALLED_RECORDER_JOB = """
import sys, threading
from scanner_app.scans import frames
from scanner_app.scans.job import run_scan

recorded = frames.FrameSteps._record

def stalls_at_frame_4(self, frame):
    if frame.index >= 3:
        threading.Event().wait()  # frames 4.. are taken by the camera, never recorded
    return recorded(self, frame)

frames.FrameSteps._record = stalls_at_frame_4
run_scan(int(sys.argv[1]))
"""


def test_work_horse_killed_with_frames_in_the_pipeline_resumes_each_frame_once(
        make_station, database_url, tmp_path):
    station = make_station(database_url)
    frames = 10
    scan = station.start_scan(profile="quick", frames=frames)
    images = station.session_dir(scan["session_id"]) / "images" / "scans" / str(scan["id"])
    # The job as a work-horse runs it, with a recorder that stops recording after 3 frames:
    # the camera takes frames 4 to 7 (one recording, two queued, one waiting to be queued).
    with open(tmp_path / "horse.log", "wb") as out:
        horse = subprocess.Popen([sys.executable, "-c", STALLED_RECORDER_JOB, str(scan["id"])],
                                 env=station.env, cwd=PROJECT_ROOT, stdout=out,
                                 stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: (images / "frame_0006.jpg").exists(), 60,
                   "frame 7 taken while frames 4 to 6 wait in the pipeline")
        assert station.scan(scan["id"])["frames_captured"] == 3
    finally:
        os.kill(horse.pid, signal.SIGKILL)
        horse.wait(10)
    assert station.frame_files(scan)[-1].name == "frame_0006.jpg"  # taken, not recorded

    # What the worker does when it sees its work-horse killed.
    with station.app.app_context():
        assert mark_interrupted(scan["id"], None, "was killed by signal 9")
    interrupted = station.scan(scan["id"])
    assert interrupted["status"] == "interrupted" and interrupted["frames_captured"] == 3
    assert "resume the scan to continue from frame 4" in interrupted["error"]
    # Recovery consolidated the metadata: exactly the recorded frames, the log folded in.
    json_path, log_path = metadata_paths(station, scan)
    meta = json.loads(json_path.read_text())
    assert [f["index"] for f in meta["frames"]] == [0, 1, 2] and not log_path.exists()
    assert meta["scan"]["status"] == "interrupted"

    station.start_worker()
    station.action(scan["id"], "resume")
    done = station.wait_for_status(scan["id"], "completed", timeout=60)
    assert done["frames_captured"] == frames
    assert_frames_consistent(station, done, frames)
    assert_true_angles_once(station, done, frames)
    meta = station.metadata(done)
    assert len(meta["runs"]) == 2 and meta["runs"][1]["first_frame"] == 3
    assert_rig_released(station, done)


def test_a_frame_the_recorder_cannot_record_interrupts_the_scan_and_is_taken_again(
        make_station, monkeypatch):
    station = make_station()
    frames = 10
    scan = station.start_scan(profile="quick", frames=frames)
    recorded = scan_frames.FrameSteps._record

    def disk_full_at_frame_4(self, frame):
        if frame.index == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return recorded(self, frame)

    monkeypatch.setattr(scan_frames.FrameSteps, "_record", disk_full_at_frame_4)
    with station.app.app_context():
        assert scan_job.run_scan(scan["id"]) == "interrupted"
    monkeypatch.undo()

    stopped = station.scan(scan["id"])
    assert stopped["frames_captured"] == 3
    assert "The scan stopped at frame 4 of 10:" in stopped["error"]
    assert "disk is full" in stopped["error"]
    assert "The 3 frames taken so far are kept" in stopped["error"]
    # The frames the camera took after it were never recorded: their files are gone.
    assert_frames_consistent(station, stopped, 3)
    assert_true_angles_once_partial(station, stopped, frames)
    assert_rig_released(station, stopped)

    station.start_worker()
    station.action(scan["id"], "resume")
    done = station.wait_for_status(scan["id"], "completed", timeout=60)
    assert_frames_consistent(station, done, frames)
    assert_true_angles_once(station, done, frames)


def test_frames_log_readers_skip_a_torn_line_and_consolidation_keeps_recorded_frames(
        tmp_path):
    json_path, log_path = tmp_path / "7.json", tmp_path / "7.frames.jsonl"
    json_path.write_text(json.dumps({"scan": {"id": 7}, "profile": {}, "rig": {},
                                     "frames": [{"index": 0, "angle": 0.0}]}))
    append_line(log_path, {"index": 1, "angle": 30.0})
    inode = log_path.stat().st_ino
    append_line(log_path, {"index": 2, "angle": 60.0})
    append_line(log_path, {"index": 1, "angle": 30.5})  # frame 2 taken again after a crash
    assert log_path.stat().st_ino == inode
    with open(log_path, "ab") as handle:
        handle.write(b'{"index": 3, "ang')  # a crash in the middle of an append
    assert [e["index"] for e in read_frames_log(log_path)] == [1, 2, 1]
    merged = read_metadata(json_path, log_path)
    assert [(f["index"], f["angle"]) for f in merged["frames"]] == [
        (0, 0.0), (1, 30.5), (2, 60.0)]

    assert consolidate(json_path, log_path, {"id": 7, "status": "interrupted"}, {0, 1})
    data = json.loads(json_path.read_text())
    assert [(f["index"], f["angle"]) for f in data["frames"]] == [(0, 0.0), (1, 30.5)]
    assert data["scan"]["status"] == "interrupted" and CONTRACT_KEYS <= set(data)
    assert not log_path.exists()
    assert not consolidate(tmp_path / "8.json", tmp_path / "8.frames.jsonl", {}, set())


def test_a_paused_scan_has_its_metadata_file_before_it_reads_paused(make_station, monkeypatch):
    """Whoever sees a scan paused finds the metadata file folded and saying so: the file is
    written before the status changes (it used to be written just after, and a reader in
    between found a file without the frames)."""
    from sqlalchemy import update

    from scanner_app.models import Scan
    from scanner_app.platform.extensions import db

    station = make_station()
    scan = station.start_scan(profile="quick", frames=6)
    json_path, log_path = metadata_paths(station, scan)
    recorded = scan_frames.FrameSteps._record
    moved = scan_frames.FrameSteps._move
    seen_at_pause: list[dict] = []

    def pause_after_frame_2(self, frame):
        result = recorded(self, frame)
        if frame.index == 1:
            with station.app.app_context():
                db.session.execute(update(Scan).where(Scan.id == scan["id"]).values(
                    control="pause"))
                db.session.commit()
        return result

    def look_then_move(self, old, new):
        if new.value == "paused":
            seen_at_pause.append(json.loads(json_path.read_text()))
        moved(self, old, new)
        if new.value == "paused":  # seen: now end the scan
            db.session.execute(update(Scan).where(Scan.id == scan["id"]).values(
                control="cancel"))
            db.session.commit()

    monkeypatch.setattr(scan_frames.FrameSteps, "_record", pause_after_frame_2)
    monkeypatch.setattr(scan_frames.FrameSteps, "_move", look_then_move)
    with station.app.app_context():
        assert scan_job.run_scan(scan["id"]) == "cancelled"
    monkeypatch.undo()

    assert len(seen_at_pause) == 1
    meta = seen_at_pause[0]
    assert meta["scan"]["status"] == "paused"
    taken = meta["scan"]["frames_captured"]
    assert taken >= 2 and [f["index"] for f in meta["frames"]] == list(range(taken))
    assert not log_path.exists() or read_frames_log(log_path) == []
