"""A finished two-ring scan as the scan job leaves it on disk: frames (JPEG, one TIFF),
captures with ring/elevation/angle, metadata/scans/<id>.json frames entries and a mask for
some frames. Used by the review's Flask-client and browser tests."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

from PIL import Image

from scanner_app.models import Capture
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import current_storage
from tests.web.conftest import add_scan, add_session, jpeg_bytes

# (ring, elevation, angle): ring 1 is taken first, ring 2 after it, both in path order.
FRAMES = [(0, 20.0, 0.0), (0, 20.0, 120.0), (0, 20.0, 240.0),
          (1, 45.0, 300.0), (1, 45.0, 180.0), (1, 45.0, 60.0)]
TIFF_FRAME = 4  # stored as a TIFF: the lightbox must show a JPEG preview
MASKED = {0, 1}  # frames with a mask in images/scans/<id>/masks/
INVALID_FRAME = 5
BLACK_FRAME = "The frame came out black; check the light."


@dataclass
class ReviewScan:
    session_id: int
    scan_id: int
    capture_ids: list[int]  # in frame order


def _tiff_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, "TIFF")
    return buffer.getvalue()


def _png_mask() -> bytes:
    buffer = io.BytesIO()
    mask = Image.new("L", (64, 48), 0)
    mask.paste(255, (16, 12, 48, 36))
    mask.save(buffer, "PNG")
    return buffer.getvalue()


def make_review_scan(app, name: str = "Review") -> ReviewScan:
    session_id = add_session(app, name)
    scan_id = add_scan(app, session_id, "completed", captured=len(FRAMES), planned=len(FRAMES))
    with app.app_context():
        store = current_storage()
        images = store.scan_images_dir(session_id, scan_id)
        (images / "masks").mkdir(parents=True, exist_ok=True)
        entries, ids = [], []
        for index, (ring, elevation, angle) in enumerate(FRAMES):
            suffix = "tif" if index == TIFF_FRAME else "jpg"
            frame = images / f"frame_{index:04d}.{suffix}"
            frame.write_bytes(_tiff_bytes() if index == TIFF_FRAME else jpeg_bytes(seed=index))
            if index in MASKED:
                (images / "masks" / f"{frame.stem}.png").write_bytes(_png_mask())
            relative = frame.relative_to(store.session_dir(session_id)).as_posix()
            valid = index != INVALID_FRAME
            capture = Capture(session_id=session_id, scan_id=scan_id, frame_index=index,
                              path=relative, angle_deg=angle, ring=ring, elevation_deg=elevation,
                              scan_pass=1, valid=valid, width=64 if valid else None,
                              height=48 if valid else None,
                              reason=None if valid else BLACK_FRAME)
            db.session.add(capture)
            db.session.commit()
            ids.append(capture.id)
            entries.append({"index": index, "angle": angle,
                            "time": f"2026-11-30T10:00:{index:02d}Z", "file": relative,
                            "width": 64, "height": 48, "ring": ring,
                            "elevation_deg": elevation,
                            "camera": {"exposure_time_us": 8000 + index, "analogue_gain": 1.5,
                                       "colour_gains": [1.9, 1.6], "lens_position": 2.25}})
        meta = store.scan_metadata_path(session_id, scan_id)
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps({"scan": {"id": scan_id}, "frames": entries}), encoding="utf-8")
    return ReviewScan(session_id, scan_id, ids)
