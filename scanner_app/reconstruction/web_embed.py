"""The "web embed" export of a scan: exports/scan-<id>-model/web-embed.zip, a folder to put on
a shop's or museum's web server as it is. It holds a self-contained index.html (no CDN, no
inline script or style) with the frames as a drag-to-turn spin (static/spin.js, one row per
ring) and, once a reconstruction of the scan has completed, the model in the vendored
<model-viewer> (with its licence); the frames resized to at most 1024 pixels.

The ZIP lives in the scan's model folder, which a newly completed reconstruction replaces
whole, so an embed never outlives the model it shows: asked for again, it is built anew.
Built in a temp file beside it and renamed once complete (storage.atomic_open).
"""

from __future__ import annotations

import io
import logging
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

from flask import current_app, render_template

from scanner_app.models import ReconstructionStatus, ScanStatus
from scanner_app.platform.errors import Conflict, NotFound
from scanner_app.platform.storage import atomic_open, current_storage
from scanner_app.reconstruction import service
from scanner_app.reconstruction.spin import spin_rows
from scanner_app.scans.service import get_scan

log = logging.getLogger("scanner.reconstruction")

FILE_NAME = "web-embed.zip"
FRAME_SIZE = 1024  # pixels on the longer side
FRAME_QUALITY = 85
# Copied from static/ as they are (each vendored library with its licence).
STATIC_FILES = {
    "spin.js": "spin.js",
    "spin.css": "spin.css",
    "embed.css": "embed.css",
    "model-viewer/model-viewer.min.js": "vendor/model-viewer/model-viewer.min.js",
    "model-viewer/LICENSE": "vendor/model-viewer/LICENSE",
    "model-viewer/README.txt": "vendor/model-viewer/README.txt",
}
MODEL_FILES = ("model-viewer/model-viewer.min.js", "model-viewer/LICENSE",
               "model-viewer/README.txt")


@dataclass
class EmbedFacts:
    path: Path
    frames: int
    rows: int
    model: bool

    def to_dict(self) -> dict:
        return {"bytes": self.path.stat().st_size, "frames": self.frames, "rows": self.rows,
                "model": self.model}


def embed_path(session_id: int, scan_id: int) -> Path:
    return current_storage().reconstruction_dir(session_id, scan_id) / FILE_NAME


def existing_or_new(scan_id: int) -> Path:
    """The scan's web embed, built now when there is none (or the model changed since)."""
    scan = _completed_scan(scan_id)
    path = embed_path(scan.session_id, scan.id)
    return path if path.is_file() else build_web_embed(scan_id).path


def _completed_scan(scan_id: int):
    scan = get_scan(scan_id)
    if scan.status is not ScanStatus.COMPLETED:
        raise Conflict(f"Scan {scan.id} is {scan.status}; a web embed can be made once the scan "
                       "has completed.", code="scan_not_completed")
    return scan


def _resized(source: Path) -> bytes:
    from PIL import Image, ImageOps  # here: the web app starts without Pillow (issue 15)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(source) as img:
            if img.format in ("JPEG", "MPO"):
                img.draft("RGB", (FRAME_SIZE, FRAME_SIZE))
            img = ImageOps.exif_transpose(img)
            img.thumbnail((FRAME_SIZE, FRAME_SIZE))
            buffer = io.BytesIO()
            img.convert("RGB").save(buffer, "JPEG", quality=FRAME_QUALITY, optimize=True)
    return buffer.getvalue()


def build_web_embed(scan_id: int) -> EmbedFacts:
    """Write the scan's web-embed.zip (replacing an older one) and say what it holds."""
    scan = _completed_scan(scan_id)
    store = current_storage()
    session_dir = store.session_dir(scan.session_id)
    rows = spin_rows(scan.id)
    if not rows:
        raise NotFound(f"Scan {scan.id} has no valid frames to show; take the scan again.",
                       code="no_frames")
    latest = service.latest_for_scan(scan.id)
    model: Path | None = None
    if latest is not None and latest.status is ReconstructionStatus.COMPLETED:
        try:
            model = service.output_path(latest, "model.glb")
        except NotFound:
            model = None

    folder = store.reconstruction_dir(scan.session_id, scan.id)
    if not session_dir.is_dir():
        raise NotFound(f"The folder of scan {scan.id}'s session is gone.", code="no_such_file")
    (session_dir / "exports").mkdir(exist_ok=True)
    folder.mkdir(exist_ok=True)
    static = Path(current_app.static_folder or "static")
    page_rows = []
    target = folder / FILE_NAME
    count = 0
    with atomic_open(target) as handle, zipfile.ZipFile(
            handle, "w", allowZip64=True, strict_timestamps=False) as archive:
        for r, row in enumerate(rows):
            names = []
            for f, capture in enumerate(row.frames):
                name = f"frames/ring{r + 1}-{f + 1:03d}.jpg"
                try:
                    data = _resized(session_dir / capture.path)
                except (OSError, ValueError) as exc:
                    log.warning("Web embed of scan %s: frame %s skipped (%s)", scan.id,
                                capture.path, exc)
                    continue
                archive.writestr(name, data, compress_type=zipfile.ZIP_STORED)
                names.append((name, capture.angle_deg))
                count += 1
            if names:
                page_rows.append({"label": row.label, "frames": names})
        for arcname, relpath in STATIC_FILES.items():
            if model is None and arcname in MODEL_FILES:
                continue
            archive.write(static / relpath, arcname, compress_type=zipfile.ZIP_DEFLATED)
        if model is not None:
            archive.write(model, "model.glb", compress_type=zipfile.ZIP_DEFLATED)
        page = render_template("reconstruction/web_embed.html", scan=scan, rows=page_rows,
                               model=model is not None)
        archive.writestr("index.html", page, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("README.txt", _readme(scan.id, model is not None),
                         compress_type=zipfile.ZIP_DEFLATED)
    log.info("Web embed of scan %s written: %s frames, model %s", scan.id, count,
             "included" if model is not None else "not built yet")
    return EmbedFacts(target, count, len(page_rows), model is not None)


def _readme(scan_id: int, model: bool) -> str:
    lines = [
        f"Scan {scan_id}: a 360-degree view for a web page, made by the scanning station.",
        "",
        "Copy this folder to a web server and link to (or frame) index.html; it loads",
        "nothing from other sites. spin.js and spin.css are the station's own viewer.",
    ]
    if model:
        lines += [
            "The 3D model (model.glb) is shown by Google's <model-viewer> (BSD-3-Clause, see",
            "model-viewer/LICENSE and model-viewer/README.txt). Browsers load it only over",
            "http(s): opened from disk, index.html shows the spin, not the model.",
        ]
    else:
        lines += ["No 3D model was built for this scan yet; build one on the scan's page and",
                  "download the embed again to include it."]
    return "\n".join(lines) + "\n"
