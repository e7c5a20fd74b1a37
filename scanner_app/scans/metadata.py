"""metadata/scans/<scan id>.json of one scan (CONTRACT "On disk"): the scan, its profile, the
rig, one entry per recorded frame (angle, time, file, camera settings) and one entry per job
run that worked on it (a resumed scan has several). Rewritten atomically after every frame, so
a crash leaves either the previous or the next version, never half of one."""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from scanner_app.config import ScanProfile
from scanner_app.platform.clock import iso
from scanner_app.platform.storage import atomic_write_json
from scanner_app.sessions.hooks import after_merge

log = logging.getLogger("scanner.scans")

EXTRA_KEYS = ("path", "poses", "plates", "arm")


class ScanMetadata:
    def __init__(self, path: Path, profile: ScanProfile):
        self.path = path
        self.profile = profile
        self.frames: dict[int, dict[str, Any]] = {}  # by frame index
        self.runs: list[dict[str, Any]] = []
        self.rig: dict[str, Any] = {}
        self.rig_state: dict[str, Any] | None = None
        # Rings and poses (scans/rings.py): "path", "poses", "plates", "arm"; kept on resume.
        self.extra: dict[str, Any] = {}

    def load(self, job_id: str | None, started: datetime, first_frame: int | None) -> None:
        """Take over what earlier runs wrote (on resume) and start this run's entry."""
        try:
            previous = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = {}
        if not isinstance(previous, dict):
            previous = {}
        for entry in previous.get("frames") or []:
            if isinstance(entry, dict) and isinstance(entry.get("index"), int):
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
                  height: int, camera: dict[str, Any], **extra: Any) -> None:
        """Replaces an entry of the same index (a frame re-taken after a crash)."""
        self.frames[index] = {
            "index": index,
            "angle": angle,
            "time": iso(taken_at),
            "file": file,
            "width": width,
            "height": height,
            "camera": dict(camera),
            **extra,  # ring, scan_pass, elevation_deg, pose, mask
        }

    def write(self, scan: dict[str, Any], recorded: set[int] | None = None) -> None:
        """Write the file with `scan` as its scan object. With `recorded`, only those frames
        (an entry may outlive a commit that failed); otherwise every known frame."""
        frames = self.frames
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
