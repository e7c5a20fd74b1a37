"""Is this file a JPEG, PNG or TIFF image that decodes completely? (CONTRACT: nothing else is
required of a valid image.) The type is decided by content, never by the file's name."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import BinaryIO
from zoneinfo import ZoneInfo

from flask import has_app_context
from PIL import Image, UnidentifiedImageError

from scanner_app.config import current_settings

log = logging.getLogger("scanner.uploads")

DEFAULT_MAX_MEGAPIXELS = 100.0  # Settings.max_image_megapixels when no app is around

ACCEPTED_FORMATS = ("JPEG", "PNG", "TIFF")
# Phone JPEGs with a depth or preview part open (through the JPEG plugin) as "MPO".
FORMAT_NAMES = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "TIFF": "TIFF"}
IMAGE_EXTENSIONS = {".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".png": "PNG",
                    ".tif": "TIFF", ".tiff": "TIFF"}
# Images of kinds the station does not take: counted as invalid captures with a reason.
OTHER_IMAGE_EXTENSIONS = {".gif", ".bmp", ".webp", ".heic", ".heif", ".avif", ".dng", ".cr2",
                          ".cr3", ".nef", ".arw", ".orf", ".rw2", ".raw", ".jxl"}

_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),  # BigTIFF
    (b"MM\x00+", "TIFF"),
)

EXIF_IFD = 0x8769
DATETIME_ORIGINAL = 36867
OFFSET_TIME_ORIGINAL = 36881


@dataclass(frozen=True)
class ImageCheck:
    valid: bool
    format: str | None = None  # "JPEG" | "PNG" | "TIFF" when valid
    width: int | None = None
    height: int | None = None
    taken_at: datetime | None = None  # naive UTC
    reason: str | None = None


def sniff_image_format(head: bytes) -> str | None:
    """The image format the first bytes announce, or None."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def _parse_exif_time(raw: object, offset: object, local_zone: ZoneInfo | None) -> datetime | None:
    """EXIF 'YYYY:MM:DD HH:MM:SS' (camera local time) -> naive UTC, or None if unusable."""
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", errors="ignore")
    if not isinstance(raw, str):
        return None
    try:
        taken = datetime.strptime(raw.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None  # "0000:00:00 00:00:00" and other placeholders
    zone = None
    if isinstance(offset, str) and len(offset) == 6 and offset[0] in "+-":
        try:
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            sign = 1 if offset[0] == "+" else -1
            zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
        except ValueError:
            zone = None
    # Without an offset the camera's clock is taken to be in the station's time zone.
    aware = taken.replace(tzinfo=zone or local_zone or datetime.now().astimezone().tzinfo)
    return aware.astimezone(UTC).replace(tzinfo=None)


def _taken_at(img: Image.Image, local_zone: ZoneInfo | None) -> datetime | None:
    try:
        exif = img.getexif()
        ifd = exif.get_ifd(EXIF_IFD)
        raw = ifd.get(DATETIME_ORIGINAL) or exif.get(DATETIME_ORIGINAL)
        if raw is None:
            return None
        return _parse_exif_time(raw, ifd.get(OFFSET_TIME_ORIGINAL), local_zone)
    except Exception:  # noqa: BLE001 - broken EXIF does not make a broken image
        log.debug("unreadable EXIF", exc_info=True)
        return None


def max_pixels_setting() -> int:
    """The configured cap (SCANNER_MAX_IMAGE_MEGAPIXELS), in pixels."""
    megapixels = DEFAULT_MAX_MEGAPIXELS
    if has_app_context():
        megapixels = current_settings().max_image_megapixels
    return int(megapixels * 1_000_000)


def _too_many_pixels(width: int, height: int, max_pixels: int) -> str:
    return (f"The image is {width} × {height} pixels ({width * height / 1e6:.0f} megapixels), "
            f"more than this station decodes ({max_pixels / 1e6:g} megapixels); send a "
            "smaller image or raise SCANNER_MAX_IMAGE_MEGAPIXELS.")


CUT_OFF = ("The image is cut off: the file ends before the picture does. Copy or export it "
           "again.")


def damage_reason(exc: BaseException, handle: BinaryIO) -> str:
    """A sentence for a person about an image that opened but did not decode."""
    if isinstance(exc, EOFError) or "truncat" in str(exc).lower():
        return CUT_OFF
    handle.seek(0)
    kind = sniff_image_format(handle.read(16))
    what = f"The {kind} image" if kind else "The image"
    return f"{what} is damaged: part of the picture cannot be read. Copy or export it again."


def check_image(handle: BinaryIO, local_zone: ZoneInfo | None = None,
                max_pixels: int | None = None) -> ImageCheck:
    """Decode the whole image from `handle` (a seekable binary file), unless its header
    announces more than `max_pixels` (default: the configured cap): such an image is invalid
    and is never decoded, so it cannot take the worker's memory."""
    max_pixels = max_pixels_setting() if max_pixels is None else max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # Image.open reads only the header; pixels are decoded by load().
            with Image.open(handle, formats=ACCEPTED_FORMATS) as img:
                fmt = FORMAT_NAMES[img.format or "JPEG"]
                width, height = img.size
                if width * height > max_pixels:
                    return ImageCheck(False, format=fmt, width=width, height=height,
                                      reason=_too_many_pixels(width, height, max_pixels))
                img.load()  # decodes every pixel: a cut-off or damaged file fails here
                taken_at = _taken_at(img, local_zone)
    except UnidentifiedImageError:
        handle.seek(0)
        claimed = sniff_image_format(handle.read(16))
        if claimed:  # it starts like one, but Pillow cannot even read its header
            return ImageCheck(False, reason=f"The file starts like a {claimed} image, but "
                                            "the rest is damaged or missing and no picture "
                                            "can be read. Copy or export it again.")
        return ImageCheck(False, reason="It is not a JPEG, PNG or TIFF image.")
    except Image.DecompressionBombError:
        return ImageCheck(False, reason="The image has too many pixels to be decoded safely; "
                                        "send a smaller image.")
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds on damaged input
        # Pillow's words ("image file is truncated (40 bytes not processed)") are for the log;
        # the person gets what happened to the file and what to do.
        log.info("Image does not decode: %s: %s", type(exc).__name__, exc)
        return ImageCheck(False, reason=damage_reason(exc, handle))
    if width <= 0 or height <= 0:
        return ImageCheck(False, reason="The image has no pixels.")
    return ImageCheck(True, format=fmt, width=width, height=height, taken_at=taken_at)
