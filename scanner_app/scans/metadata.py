"""metadata/scans/<scan id>.json of one scan (CONTRACT "On disk"): the scan, its profile, the
rig, one entry per recorded frame (angle, time, file, camera settings) and one entry per job
run that worked on it (a resumed scan has several).

Per frame, the entry is appended (one fsync'd line) to metadata/scans/<id>.frames.jsonl; the
whole JSON is never rewritten per frame. It is consolidated (rewritten atomically with every
frame known, the log then removed) when a run starts, pauses and ends, and by recovery when a
killed run's scan is marked interrupted, so the contract file is complete for every scan that
is not running. A reader that needs a running scan's frames reads both (`read_metadata`)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from scanner_app.config import ScanProfile
from scanner_app.platform.clock import iso
from scanner_app.platform.storage import atomic_write_json, fsync_dir
from scanner_app.sessions.hooks import after_merge

log = logging.getLogger("scanner.scans")

EXTRA_KEYS = ("path", "poses", "plates", "arm")


class ScanMetadata:
    def __init__(self, path: Path, frames_log: Path, profile: ScanProfile):
        self.path = path
        self.frames_log = frames_log  # storage.scan_frames_log_path
        self._lock = threading.Lock()  # frames: added by the recorder thread (scans/pipeline.py)
        self.profile = profile
        self.frames: dict[int, dict[str, Any]] = {}  # by frame index
        self.runs: list[dict[str, Any]] = []
        self.rig: dict[str, Any] = {}
        self.rig_state: dict[str, Any] | None = None
        # Rings and poses (scans/rings.py): "path", "poses", "plates", "arm"; kept on resume.
        self.extra: dict[str, Any] = {}

    def load(self, job_id: str | None, started: datetime, first_frame: int | None) -> None:
        """Take over what earlier runs wrote (on resume) and start this run's entry."""
        previous = read_metadata(self.path, self.frames_log)
        for entry in previous.get("frames") or []:
            self.frames[entry["index"]] = entry
        self.runs = [r for r in previous.get("runs") or [] if isinstance(r, dict)]
        # Kept when this run never opens the rig (e.g. it only finishes an export).
        if isinstance(previous.get("rig"), dict):
            self.rig = previous["rig"]
        if isinstance(previous.get("rig_state"), dict):
            self.rig_state = previous["rig_state"]
        self.extra = {k: previous[k] for k in EXTRA_KEYS if previous.get(k) is not None}
        self.runs.append({"job": job_id, "started": iso(started), "first_frame": first_frame})

    def set_exposure(self, exposure: dict[str, Any], reapplied: bool = False) -> None:
        """The exposure this run holds; `reapplied`: the one an earlier run saved."""
        self.runs[-1]["exposure"] = exposure
        if reapplied:
            self.runs[-1]["exposure_reapplied"] = True

    def saved_exposure(self) -> dict[str, Any] | None:
        """The exposure the scan's latest run held (what a resume re-applies), or None."""
        for run in reversed(self.runs):
            if run.get("exposure"):
                return run["exposure"]
        return None

    def set_position(self, *, known: bool, note: str) -> None:
        """Whether this run's platter angles are measured (home switch) or assumed, said
        in one sentence; the latest run's is also the file's "position"."""
        self.runs[-1]["position"] = {"known": known, "note": note}

    def add_frame(self, index: int, *, angle: float, taken_at: datetime, file: str, width: int,
                  height: int, camera: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """Replaces an entry of the same index (a frame re-taken after a crash) and appends
        it to the frames log (fsync'd) before returning it."""
        entry = {
            "index": index,
            "angle": angle,
            "time": iso(taken_at),
            "file": file,
            "width": width,
            "height": height,
            "camera": dict(camera),
            **extra,  # ring, scan_pass, elevation_deg, pose, mask
        }
        append_line(self.frames_log, entry)
        with self._lock:
            self.frames[index] = entry
        return entry

    def write(self, scan: dict[str, Any], recorded: set[int] | None = None) -> None:
        """Consolidate: write the file with `scan` as its scan object, then drop the frames
        log (every entry is in the file now). With `recorded`, only those frames (an entry
        may outlive a commit that failed: that frame is taken again); otherwise every known
        frame. Not while the recorder thread adds frames (the pipeline is drained first)."""
        with self._lock:
            frames = dict(self.frames)
        if recorded is not None:
            frames = {i: e for i, e in frames.items() if i in recorded}
        profile = dataclasses.asdict(self.profile)
        profile["resolution"] = list(profile["resolution"])
        # The request's `frames` overrides the profile's: record what this scan takes.
        profile["frames"] = scan.get("frames_planned", profile["frames"])
        data: dict[str, Any] = {
            "scan": scan,
            "profile": profile,
            "rig": self.rig,
            "exposure": self.saved_exposure(),
            "position": next((r["position"] for r in reversed(self.runs) if r.get("position")),
                             None),
            "runs": self.runs,
            "frames": [frames[i] for i in sorted(frames)],
        }
        if self.rig_state is not None:
            data["rig_state"] = self.rig_state
        data.update(self.extra)
        atomic_write_json(self.path, data)
        self.frames_log.unlink(missing_ok=True)


def append_line(path: Path, entry: dict[str, Any]) -> None:
    """Append one JSON line and fsync it: a crash leaves at most a torn last line, which
    readers skip. The folder is fsync'd when the append created the file."""
    line = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode("utf-8") + b"\n"
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent)


def read_frames_log(path: Path) -> list[dict[str, Any]]:
    """The entries of a frames log in the order appended (torn or foreign lines skipped)."""
    try:
        raw = path.read_bytes()
    except OSError:
        return []
    entries = []
    for line in raw.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line torn by a crash mid-append
        if isinstance(entry, dict) and isinstance(entry.get("index"), int):
            entries.append(entry)
    return entries


def read_metadata(path: Path, frames_log: Path) -> dict[str, Any]:
    """<id>.json with the frames appended since it was consolidated merged in (a later
    entry of an index replaces an earlier one), frames in index order; {} when unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    frames = {e["index"]: e for e in data.get("frames") or []
              if isinstance(e, dict) and isinstance(e.get("index"), int)}
    for entry in read_frames_log(frames_log):
        frames[entry["index"]] = entry
    if frames or "frames" in data:
        data["frames"] = [frames[i] for i in sorted(frames)]
    return data


def consolidate(path: Path, frames_log: Path, scan: dict[str, Any], recorded: set[int]) -> bool:
    """Recovery's consolidation of a scan whose run died: the file with its logged frames
    merged in, only the `recorded` ones, `scan` as its scan object; the log removed.
    False (nothing written) when there is neither a file nor a log."""
    if not path.exists() and not frames_log.exists():
        return False
    data = read_metadata(path, frames_log)
    data["frames"] = [e for e in data.get("frames") or [] if e["index"] in recorded]
    data["scan"] = scan
    atomic_write_json(path, data)
    frames_log.unlink(missing_ok=True)
    return True


@after_merge
def point_moved_metadata_at(session_id: int, moved: list[Path]) -> None:
    """After a merge, moved metadata/scans/<id>.json files still name the old session: fix
    that (the database is right; a file that cannot be rewritten lags, with a warning)."""
    for path in moved:
        if path.suffix != ".json" or path.parent.name != "scans":
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data.get("scan"), dict):
                data["scan"]["session_id"] = session_id
                atomic_write_json(path, data)
        except (OSError, ValueError) as exc:
            log.warning("Could not update %s after the merge: %s", path, exc)
