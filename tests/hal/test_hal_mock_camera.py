from __future__ import annotations

import datetime as dt
import errno
import io
import time
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from hal.errors import CameraError, CameraTimeout, CameraUnplugged
from hal.exif import read_exif
from hal.mock.camera import MockCamera
from hal.mock.render import render_view

WHEN = dt.datetime(2024, 5, 6, 7, 8, 9)
SMALL = (320, 240)


def camera(**kw) -> MockCamera:
    kw.setdefault("resolution", SMALL)
    kw.setdefault("capture_seconds", 0)
    return MockCamera(**kw)


def shoot(cam: MockCamera, path: Path, angle: float) -> bytes:
    cam.capture(path, exif={"angle_deg": angle, "datetime": WHEN})
    return path.read_bytes()


def test_capture_writes_a_real_jpeg_at_the_configured_size(tmp_path: Path) -> None:
    info = camera().capture(tmp_path / "a.jpg", exif={"angle_deg": 10, "datetime": WHEN})
    assert info.path == tmp_path / "a.jpg"
    assert (info.width, info.height) == SMALL
    with Image.open(info.path) as img:
        img.load()  # decodes the whole picture, not just the header
        assert img.format == "JPEG"
        assert img.size == SMALL
    assert info.settings["angle_deg"] == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg"]  # no temp file left


def test_frames_differ_with_the_angle(tmp_path: Path) -> None:
    cam = camera()
    a = shoot(cam, tmp_path / "a.jpg", 0)
    b = shoot(cam, tmp_path / "b.jpg", 10)
    assert a != b
    diff = ImageChops.difference(Image.open(io.BytesIO(a)).convert("RGB"),
                                 Image.open(io.BytesIO(b)).convert("RGB"))
    assert diff.getbbox() is not None
    assert max(hi for _, hi in diff.getextrema()) > 100  # the object really moved


def test_same_angle_gives_the_same_bytes(tmp_path: Path) -> None:
    a = shoot(camera(), tmp_path / "a.jpg", 30)
    b = shoot(camera(), tmp_path / "b.jpg", 30)
    assert a == b


def test_exif_carries_angle_time_and_notes(tmp_path: Path) -> None:
    camera().capture(tmp_path / "a.jpg",
                     exif={"angle_deg": 42.5, "datetime": WHEN, "scan": "s1", "index": 3})
    exif = read_exif(tmp_path / "a.jpg")
    assert exif["angle_deg"] == 42.5
    assert exif["description"] == "turntable angle 42.500 deg"
    assert exif["datetime_original"] == "2024:05:06 07:08:09"
    assert exif["notes"]["scan"] == "s1" and exif["notes"]["index"] == 3


def test_exif_time_defaults_to_now(tmp_path: Path) -> None:
    before = dt.datetime.now().replace(microsecond=0)
    camera().capture(tmp_path / "a.jpg")
    after = dt.datetime.now()
    taken = dt.datetime.strptime(read_exif(tmp_path / "a.jpg")["datetime_original"],
                                 "%Y:%m:%d %H:%M:%S")
    assert before <= taken <= after


def test_angle_source_decides_what_is_rendered(tmp_path: Path) -> None:
    angle = {"now": 45.0}
    cam = camera(angle_source=lambda: angle["now"])
    cam.capture(tmp_path / "a.jpg", exif={"datetime": WHEN})
    assert read_exif(tmp_path / "a.jpg")["angle_deg"] == 45.0
    reference = shoot(camera(), tmp_path / "b.jpg", 45.0)
    assert (tmp_path / "a.jpg").read_bytes() == reference


def test_locked_exposure_keeps_brightness_constant(tmp_path: Path) -> None:
    def corner(path: Path) -> tuple[int, int, int]:
        with Image.open(path) as img:
            return img.convert("RGB").crop((0, 0, 8, 8)).resize((1, 1)).getpixel((0, 0))

    angle = {"now": 0.0}
    cam = camera(angle_source=lambda: angle["now"])
    cam.capture(tmp_path / "a0.jpg")
    angle["now"] = 45.0
    cam.capture(tmp_path / "a45.jpg")
    assert corner(tmp_path / "a0.jpg") != corner(tmp_path / "a45.jpg")  # auto exposure drifts

    angle["now"] = 0.0
    locked = cam.lock_exposure()
    assert locked.as_dict()["colour_gains"] == [1.85, 1.55]
    cam.capture(tmp_path / "l0.jpg")
    angle["now"] = 45.0
    info = cam.capture(tmp_path / "l45.jpg")
    assert info.settings["exposure_locked"] is True
    assert corner(tmp_path / "l0.jpg") == corner(tmp_path / "l45.jpg")
    cam.unlock_exposure()
    assert cam.locked_exposure is None


def test_capture_takes_the_configured_time(tmp_path: Path, sleeps) -> None:
    cam = camera(capture_seconds=0.2, sleep=sleeps)
    cam.capture(tmp_path / "a.jpg")
    assert len(sleeps.delays) == 1
    assert 0 < sleeps.delays[0] <= 0.2


def test_quality_changes_the_file(tmp_path: Path) -> None:
    cam = camera()
    low = cam.capture(tmp_path / "low.jpg", exif={"datetime": WHEN}, quality=20)
    high = cam.capture(tmp_path / "high.jpg", exif={"datetime": WHEN}, quality=95)
    assert low.settings["quality"] == 20
    assert low.path.stat().st_size < high.path.stat().st_size


def test_constructor_fault_unplugged_is_permanent(tmp_path: Path) -> None:
    cam = camera(fail_at_capture=2, fault="unplugged")
    cam.capture(tmp_path / "1.jpg")
    with pytest.raises(CameraUnplugged, match="ribbon cable"):
        cam.capture(tmp_path / "2.jpg")
    with pytest.raises(CameraUnplugged):
        cam.capture(tmp_path / "3.jpg")
    assert not (tmp_path / "2.jpg").exists()


def test_constructor_fault_timeout_is_one_off(tmp_path: Path) -> None:
    cam = camera(fail_at_capture=1, fault="timeout")
    with pytest.raises(CameraTimeout, match="too long"):
        cam.capture(tmp_path / "1.jpg")
    cam.capture(tmp_path / "2.jpg")
    assert (tmp_path / "2.jpg").exists()


@pytest.mark.parametrize(
    ("text", "error", "words"),
    [("unplugged\n", CameraUnplugged, "ribbon cable"),
     ("", CameraUnplugged, "ribbon cable"),
     ("timeout", CameraTimeout, "too long"),
     ("disk-full", OSError, "SD card is full"),
     ("gremlins", CameraError, "not a known fault")],
)
def test_fault_file_breaks_and_mends_a_running_camera(
    tmp_path: Path, text: str, error: type[Exception], words: str
) -> None:
    fault = tmp_path / "fault"
    shots = tmp_path / "shots"
    shots.mkdir()
    cam = camera(fault_file=fault)
    cam.capture(shots / "before.jpg")
    fault.write_text(text)
    with pytest.raises(error, match=words) as info:
        cam.capture(shots / "during.jpg")
    if text == "disk-full":
        assert info.value.errno == errno.ENOSPC
    assert sorted(p.name for p in shots.iterdir()) == ["before.jpg"]  # nothing half-written
    fault.unlink()
    cam.capture(shots / "after.jpg")
    assert (shots / "after.jpg").exists()


def test_render_is_fast_at_the_default_resolution() -> None:
    render_view(0, (1280, 960))  # fill the size caches once
    best = float("inf")
    for angle in (10, 20, 30):
        started = time.perf_counter()
        img = render_view(angle, (1280, 960))
        img.save(io.BytesIO(), "JPEG", quality=90)
        best = min(best, time.perf_counter() - started)
    assert best < 0.15


def test_set_resolution_changes_the_photo_size_and_drops_the_lock(tmp_path: Path) -> None:
    cam = camera()
    cam.lock_exposure()
    cam.set_resolution((160, 120))
    assert cam.locked_exposure is None
    info = cam.capture(tmp_path / "a.jpg")
    assert Image.open(info.path).size == (160, 120) == (info.width, info.height)
    cam.set_resolution(None)
    assert cam.resolution == SMALL
