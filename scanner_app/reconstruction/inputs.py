"""A completed scan's frames as pipeline input: each frame's photo, mask and known pose, from
the scan's metadata file (what the scan job recorded per frame) and its folders.

Only the first pass is used: a second pass (the object turned over) sees the object lying
differently on the platter, so its poses do not join the first pass's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hal.geometry import Intrinsics, Pose, RigGeometry, camera_pose, qvec_to_rotation
from scanner_app.reconstruction.frames import FrameInput

MIN_FRAMES = 8


class InputError(ValueError):
    """The scan cannot be reconstructed as it is (the message says what to change)."""


def _camera(metadata: dict[str, Any]) -> tuple[Intrinsics, RigGeometry] | None:
    model = (metadata.get("poses") or {}).get("camera_model")
    if not isinstance(model, dict):
        model = (metadata.get("rig") or {}).get("camera") or {}
    try:
        return Intrinsics.from_dict(model["intrinsics"]), RigGeometry.from_dict(model["geometry"])
    except (KeyError, TypeError, ValueError):
        return None


def _pose(entry: dict[str, Any], geometry: RigGeometry) -> Pose:
    pose = entry.get("pose")
    if isinstance(pose, dict) and "qvec" in pose and "tvec" in pose:
        return Pose(qvec_to_rotation(pose["qvec"]), [float(x) for x in pose["tvec"]])
    return camera_pose(geometry, entry.get("elevation_deg"), float(entry.get("angle", 0.0)))


def scan_frames(session_dir: Path, metadata_path: Path) -> tuple[list[FrameInput], dict]:
    """(frames, facts about the input for the report). Raises InputError with a sentence."""
    try:
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise InputError("The scan's metadata file is missing or damaged, so the frames' "
                         "poses are unknown: take the scan again.") from None
    camera = _camera(metadata)
    if camera is None:
        raise InputError("The scan does not say which camera model took it, so its frames "
                         "have no poses: calibrate the rig ('scanner hal calibrate') and scan "
                         "again.")
    intrinsics, geometry = camera
    frames: list[FrameInput] = []
    for entry in metadata.get("frames") or []:
        if (entry.get("scan_pass") or 1) != 1 or not entry.get("file"):
            continue
        image = session_dir / entry["file"]
        if not image.is_file():
            continue
        size = (int(entry.get("width") or intrinsics.width),
                int(entry.get("height") or intrinsics.height))
        intr = intrinsics if size == (intrinsics.width, intrinsics.height) else (
            intrinsics.scaled(*size))
        mask = session_dir / entry["mask"] if entry.get("mask") else (
            image.parent / "masks" / f"{image.stem}.png")
        frames.append(FrameInput(image.name, intr, _pose(entry, geometry), image_path=image,
                                 mask_path=mask, ring=int(entry.get("ring") or 0),
                                 angle_deg=float(entry.get("angle") or 0.0)))
    poses = metadata.get("poses") or {}
    facts = {"frames_in_scan": len(metadata.get("frames") or []), "frames_used": len(frames),
             "poses_nominal": bool(poses.get("nominal", True))}
    check_frames(frames)
    return frames, facts


def check_frames(frames: list[FrameInput]) -> None:
    """Too few frames or no masks: InputError saying what to change."""
    if len(frames) < MIN_FRAMES:
        raise InputError(f"The scan has {len(frames)} usable frames; a model needs at least "
                         f"{MIN_FRAMES}. Scan again with more frames (24 or more per ring).")
    masked = sum(1 for f in frames if f.has_mask)
    if masked == 0:
        raise InputError("The scan's frames have no masks, so the object cannot be told from "
                         "the background: take the background plates (or use a plain "
                         "backdrop) and scan again.")
    if masked < MIN_FRAMES:
        raise InputError(f"Only {masked} frames have a mask; a model needs at least "
                         f"{MIN_FRAMES}. Use a plainer backdrop and scan again.")
