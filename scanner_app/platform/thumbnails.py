"""Thumbnails of valid images (uploaded images and scan frames), one small JPEG per capture in
<session dir>/metadata/thumbnails/<capture id>.jpg."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

from scanner_app.platform.storage import StorageManager, atomic_write_bytes

THUMBNAIL_SIZE = 320
THUMBNAIL_QUALITY = 80


def thumbnail_path(storage: StorageManager, session_id: int, capture_id: int) -> Path:
    """Kept for callers that import it (scan_job.py); the path is StorageManager's."""
    return storage.thumbnail_path(session_id, capture_id)


_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def _to_jpeg_mode(img: Image.Image) -> Image.Image:
    """RGB or L, whatever the source: JPEG has no alpha and no 16-bit samples."""
    from PIL import Image  # Pillow is loaded by the processes that make thumbnails only
    if img.mode in ("RGB", "L"):
        return img
    if img.mode in _WIDE_MODES[:-1]:
        # 16-bit (e.g. scientific TIFF): scale 0..65535 down to 0..255.
        return img.convert("I").point(lambda value: value * (1 / 257)).convert("L")
    if img.mode == "F":
        return img.convert("L")
    if img.mode in ("RGBA", "LA", "PA", "P", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def make_thumbnail(src: Path, dest: Path, size: int = THUMBNAIL_SIZE) -> None:
    """Write a JPEG at most `size` pixels on its longer side to `dest`, atomically.
    Raises OSError (or a Pillow error) when `src` cannot be read, and FileNotFoundError when
    the folder above dest's own is gone (e.g. its session was deleted meanwhile)."""
    from PIL import Image, ImageOps

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(src) as img:
            if img.format in ("JPEG", "MPO"):
                # Decode at 1/2, 1/4 or 1/8 scale straight away: far faster on a Pi.
                img.draft("RGB", (size, size))
            img = ImageOps.exif_transpose(img)  # upright, as a person would hold it
            if img.mode in _WIDE_MODES:
                img = _to_jpeg_mode(img)  # Pillow cannot shrink 16-bit or float images
            img.thumbnail((size, size))
            img = _to_jpeg_mode(img)
            buffer = io.BytesIO()
            img.save(buffer, "JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
    # Only the last folder is made: a session directory deleted meanwhile stays deleted.
    dest.parent.mkdir(exist_ok=True)
    atomic_write_bytes(dest, buffer.getvalue())
