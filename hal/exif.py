"""EXIF for scan photos: the turntable angle, the time and the caller's notes.

Both camera drivers store the same fields so the rest of the station reads any photo with
`read_exif`: ImageDescription "turntable angle 90.000 deg", DateTimeOriginal, and the
whole `exif` dict given to `Camera.capture` as JSON in UserComment.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image, TiffImagePlugin

IMAGE_DESCRIPTION = 0x010E
MAKE = 0x010F
MODEL = 0x0110
SOFTWARE = 0x0131
DATETIME = 0x0132
EXPOSURE_TIME = 0x829A
ISO_SPEED = 0x8827
DATETIME_ORIGINAL = 0x9003
FOCAL_LENGTH = 0x920A
FOCAL_LENGTH_35MM = 0xA405
USER_COMMENT = 0x9286
EXIF_DATE_FORMAT = "%Y:%m:%d %H:%M:%S"
_ASCII_PREFIX = b"ASCII\x00\x00\x00"  # EXIF UserComment character-code header


def capture_time(info: Mapping[str, Any] | None) -> dt.datetime:
    """The photo's time: info["datetime"] (datetime or ISO text) if given, else now.

    Passing a fixed "datetime" makes the JPEG bytes reproducible, which tests rely on.
    """
    value = (info or {}).get("datetime")
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and value:
        return dt.datetime.fromisoformat(value)
    return dt.datetime.now().replace(microsecond=0)


def build_exif(
    info: Mapping[str, Any] | None,
    *,
    make: str,
    model: str,
    angle_deg: float | None = None,
    exposure_time_us: int | None = None,
    analogue_gain: float | None = None,
    focal_length_mm: float | None = None,
    focal_length_35mm: int | None = None,
) -> bytes:
    """EXIF block (with its "Exif\\0\\0" header) ready for Pillow's save(exif=...)."""
    notes = dict(info or {})
    when = capture_time(notes)
    notes["datetime"] = when.isoformat()
    if angle_deg is None and notes.get("angle_deg") is not None:
        angle_deg = float(notes["angle_deg"])
    if angle_deg is not None:
        notes.setdefault("angle_deg", round(float(angle_deg), 6))

    exif = Image.Exif()
    exif[MAKE] = make
    exif[MODEL] = model
    exif[SOFTWARE] = "scanner hal"
    exif[DATETIME] = when.strftime(EXIF_DATE_FORMAT)
    if angle_deg is not None:
        exif[IMAGE_DESCRIPTION] = f"turntable angle {float(angle_deg):.3f} deg"
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[DATETIME_ORIGINAL] = when.strftime(EXIF_DATE_FORMAT)
    sub[USER_COMMENT] = _ASCII_PREFIX + json.dumps(
        notes, sort_keys=True, default=str, ensure_ascii=True
    ).encode("ascii")
    if exposure_time_us:
        sub[EXPOSURE_TIME] = TiffImagePlugin.IFDRational(int(exposure_time_us), 1_000_000)
    if analogue_gain:
        sub[ISO_SPEED] = int(round(float(analogue_gain) * 100))
    if focal_length_mm:  # photogrammetry tools start their intrinsics from these
        sub[FOCAL_LENGTH] = TiffImagePlugin.IFDRational(round(float(focal_length_mm) * 100), 100)
    if focal_length_35mm:
        sub[FOCAL_LENGTH_35MM] = int(focal_length_35mm)
    data = exif.tobytes()
    if len(data) > 65533:
        raise ValueError("The EXIF notes are too large for a JPEG (64 kB at most).")
    return data


def replace_exif(jpeg: bytes, exif: bytes) -> bytes:
    """Swap the EXIF segment of a JPEG without re-encoding the picture.

    The Pi camera already encoded the JPEG; decoding and re-encoding it just to add our
    fields would cost time and quality, so the APP1 segment is replaced in the byte stream.
    """
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG file (no start-of-image marker)")
    segments: list[bytes] = []
    pos = 2
    while pos + 4 <= len(jpeg):
        if jpeg[pos] != 0xFF:
            raise ValueError("corrupt JPEG header")
        marker = jpeg[pos + 1]
        if marker == 0xFF:  # padding byte before a marker
            pos += 1
            continue
        if marker == 0xDA or 0xD0 <= marker <= 0xD9 or marker == 0x01:
            break  # start of scan (or a marker without length): the header is over
        length = int.from_bytes(jpeg[pos + 2 : pos + 4], "big")
        segment = jpeg[pos : pos + 2 + length]
        pos += 2 + length
        if marker == 0xE1 and segment[4:10] == b"Exif\x00\x00":
            continue  # drop the old EXIF
        segments.append(segment)
    app1 = b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif
    lead = 1 if segments and segments[0][1] == 0xE0 else 0  # keep JFIF APP0 first
    return b"\xff\xd8" + b"".join(segments[:lead]) + app1 + b"".join(segments[lead:]) + jpeg[pos:]


def read_exif(path: Path | str) -> dict[str, Any]:
    """The scan fields of a photo written by a hal camera (for tests and the web UI)."""
    with Image.open(path) as img:
        exif = img.getexif()
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    raw = sub.get(USER_COMMENT, b"")
    if isinstance(raw, str):
        raw = raw.encode("latin-1")
    notes: dict[str, Any] = {}
    if raw.startswith(_ASCII_PREFIX):
        try:
            notes = json.loads(raw[len(_ASCII_PREFIX):].decode("ascii"))
        except ValueError:
            notes = {}
    return {
        "make": exif.get(MAKE),
        "model": exif.get(MODEL),
        "description": exif.get(IMAGE_DESCRIPTION),
        "datetime_original": sub.get(DATETIME_ORIGINAL),
        "focal_length_mm": float(sub[FOCAL_LENGTH]) if FOCAL_LENGTH in sub else None,
        "focal_length_35mm": sub.get(FOCAL_LENGTH_35MM),
        "angle_deg": notes.get("angle_deg"),
        "notes": notes,
    }
