from __future__ import annotations

import errno
import io
from pathlib import Path

import pytest
from PIL import Image

import hal.atomic
from hal.atomic import atomic_write_bytes
from hal.exif import build_exif, read_exif, replace_exif


def jpeg(exif: bytes | None = None) -> bytes:
    img = Image.new("RGB", (40, 30), (10, 120, 200))
    img.paste((250, 20, 20), (5, 5, 20, 20))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, **({"exif": exif} if exif else {}))
    return buf.getvalue()


def test_replace_exif_swaps_the_segment_without_reencoding(tmp_path: Path) -> None:
    original = jpeg(build_exif({}, make="Other", model="cam", angle_deg=1.0))
    ours = build_exif({"datetime": "2024-01-02T03:04:05"}, make="Raspberry Pi",
                      model="imx708", angle_deg=90.0)
    out = replace_exif(original, ours)
    assert out.count(b"Exif\x00\x00") == 1
    (tmp_path / "x.jpg").write_bytes(out)
    exif = read_exif(tmp_path / "x.jpg")
    assert (exif["make"], exif["model"], exif["angle_deg"]) == ("Raspberry Pi", "imx708", 90.0)
    assert exif["datetime_original"] == "2024:01:02 03:04:05"
    before = Image.open(io.BytesIO(original)).convert("RGB").tobytes()
    after = Image.open(io.BytesIO(out)).convert("RGB").tobytes()
    assert before == after


def test_replace_exif_adds_one_when_missing() -> None:
    out = replace_exif(jpeg(), build_exif({}, make="m", model="n", angle_deg=5))
    assert out.count(b"Exif\x00\x00") == 1
    Image.open(io.BytesIO(out)).load()


def test_replace_exif_rejects_non_jpeg() -> None:
    with pytest.raises(ValueError, match="not a JPEG"):
        replace_exif(b"PNG....", b"Exif\x00\x00")


def test_atomic_write_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "photo.jpg"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["photo.jpg"]


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "photo.jpg"
    target.write_bytes(b"old")

    def broken_replace(src: str, dst: str) -> None:
        raise PermissionError(errno.EACCES, "nope")

    monkeypatch.setattr(hal.atomic.os, "replace", broken_replace)
    with pytest.raises(PermissionError):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["photo.jpg"]


def test_full_disk_says_so_in_plain_words(tmp_path: Path, monkeypatch) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(hal.atomic.os, "fsync", full)
    with pytest.raises(OSError) as info:
        atomic_write_bytes(tmp_path / "photo.jpg", b"data")
    assert info.value.errno == errno.ENOSPC
    assert "SD card is full" in str(info.value)
    assert list(tmp_path.iterdir()) == []
