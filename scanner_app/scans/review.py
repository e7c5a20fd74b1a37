"""What the scan page's review shows: a scan's frames grouped by ring in path order, one
frame's metadata (from metadata/scans/<id>.json), its mask, and a JPEG preview of frames a
browser cannot show (TIFF)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from scanner_app.models import Capture, Scan
from scanner_app.platform.errors import NotFound
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import current_storage
from scanner_app.platform.thumbnails import make_thumbnail

PREVIEW_SIZE = 1600
# Formats every browser shows as they are; anything else gets a JPEG preview.
_BROWSER_SUFFIXES = (".jpg", ".jpeg", ".png")
_NO_FRAME = "That frame is not part of this scan. Reload the scan page."
VALID_FILTERS: dict[str, bool | None] = {"": None, "valid": True, "invalid": False}


@dataclass
class Ring:
    number: int | None  # 0-based; None for frames from before rings
    elevation_deg: float | None
    scan_pass: int | None
    frames: list[Capture] = field(default_factory=list)


def scan_frames(scan: Scan, valid: bool | None = None) -> list[Capture]:
    """The scan's captures in path order (the order they were taken)."""
    query = select(Capture).where(Capture.scan_id == scan.id)
    if valid is not None:
        query = query.where(Capture.valid.is_(valid))
    return list(db.session.scalars(query.order_by(Capture.frame_index, Capture.id)).all())


def group_by_ring(frames: list[Capture]) -> list[Ring]:
    """Consecutive frames of one ring (and pass) form a group, in the order taken."""
    rings: list[Ring] = []
    for frame in frames:
        key = (frame.ring, frame.scan_pass)
        if not rings or (rings[-1].number, rings[-1].scan_pass) != key:
            rings.append(Ring(frame.ring, frame.elevation_deg, frame.scan_pass))
        rings[-1].frames.append(frame)
    return rings


def frame_of(scan: Scan, capture_id: int) -> Capture:
    capture = db.session.get(Capture, capture_id)
    if capture is None or capture.scan_id != scan.id:
        raise NotFound(_NO_FRAME, code="no_such_frame")
    return capture


def neighbours(frames: list[Capture], capture: Capture) -> tuple[Capture | None, Capture | None]:
    """The frames before and after `capture` in `frames` (None at either end)."""
    ids = [f.id for f in frames]
    if capture.id not in ids:
        return None, None
    at = ids.index(capture.id)
    return (frames[at - 1] if at > 0 else None,
            frames[at + 1] if at + 1 < len(frames) else None)


def frame_metadata(scan: Scan, capture: Capture) -> dict[str, Any]:
    """The frame's entry of metadata/scans/<id>.json, or {} when the file or entry is gone
    (the page then shows what the database knows)."""
    path = current_storage().scan_metadata_path(scan.session_id, scan.id)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    for entry in data.get("frames") or [] if isinstance(data, dict) else []:
        if isinstance(entry, dict) and entry.get("index") == capture.frame_index:
            return entry
    return {}


def frame_file(scan: Scan, capture: Capture) -> Path:
    return current_storage().session_dir(scan.session_id) / capture.path


def frame_mask(scan: Scan, capture: Capture) -> Path | None:
    """images/scans/<id>/masks/<frame stem>.png when the scan wrote one."""
    images = current_storage().scan_images_dir(scan.session_id, scan.id)
    from scanner_app.scans.plates import mask_path  # OpenCV and numpy: only here

    mask = mask_path(images, Path(capture.path))
    return mask if mask.is_file() else None


def needs_preview(capture: Capture) -> bool:
    return not capture.path.lower().endswith(_BROWSER_SUFFIXES)


def frame_preview(scan: Scan, capture: Capture) -> Path:
    """A JPEG of a frame the browser cannot show, made once and kept beside the thumbnails
    (metadata/previews/<capture id>.jpg). Raises NotFound when the frame cannot be read."""
    if not capture.valid:
        raise NotFound(_NO_FRAME, code="no_such_frame")
    preview = current_storage().preview_path(scan.session_id, capture.id)
    if not preview.is_file():
        try:
            make_thumbnail(frame_file(scan, capture), preview, size=PREVIEW_SIZE)
        except (OSError, ValueError) as exc:
            raise NotFound("This frame's file cannot be read any more; take the scan again.",
                           code="no_such_frame") from exc
    return preview
