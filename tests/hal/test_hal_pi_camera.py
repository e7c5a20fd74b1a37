"""The Picamera2 driver against a stand-in that records what the real Picamera2 would get."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from PIL import Image

from hal.errors import CameraError, CameraTimeout, CameraUnplugged
from hal.exif import read_exif
from hal.pi.camera import AF_MODE_AUTO, AF_MODE_MANUAL, PiCamera
from hal.settings import CameraSettings
from tests.hal.picamera2_standin import Picamera2Factory

SETTLE = 2


def make(factory: Picamera2Factory, **kw) -> PiCamera:
    base = dict(resolution=(2028, 1520), settle_frames=SETTLE, metering_frames=10,
                capture_timeout_s=7.0)
    base.update(kw)
    return PiCamera(CameraSettings(**base), picamera2_factory=factory)


def test_open_configures_a_still_stream_and_autofocus():
    factory = Picamera2Factory()
    cam = make(factory)
    cam.open()
    cam.open()  # idempotent
    assert factory.calls == [
        ("Picamera2", 0),
        ("create_still_configuration", {"size": (2028, 1520)}),
        ("configure", {"use_case": "still", "main": {"size": (2028, 1520)}}),
        ("set_controls", {"AfMode": AF_MODE_AUTO}),
        ("start",),
    ] + [("capture_metadata",)] * SETTLE
    assert cam.resolution == (2028, 1520)
    assert cam.describe()["model"] == "imx708"


def test_manual_lens_position_and_full_sensor_size():
    factory = Picamera2Factory()
    cam = make(factory, lens_position=2.5, resolution=(0, 0))
    cam.open()
    assert ("set_controls", {"AfMode": AF_MODE_MANUAL, "LensPosition": 2.5}) in factory.calls
    assert ("create_still_configuration", {"size": (4608, 2592)}) in factory.calls
    assert cam.resolution == (4608, 2592)


def test_fixed_focus_camera_gets_no_focus_controls():
    factory = Picamera2Factory(has_autofocus=False)
    cam = make(factory)
    cam.open()
    cam.lock_exposure()
    assert not any(c[0] == "autofocus_cycle" for c in factory.calls)
    assert not any(c[0] == "set_controls" and "AfMode" in c[1] for c in factory.calls)


def test_lock_exposure_meters_once_then_locks():
    factory = Picamera2Factory()
    cam = make(factory)
    cam.open()
    factory.calls.clear()
    locked = cam.lock_exposure()
    assert factory.calls == [
        ("set_controls", {"AeEnable": True, "AwbEnable": True}),
        ("autofocus_cycle",),
        ("capture_metadata",), ("capture_metadata",), ("capture_metadata",),  # until AeLocked
        ("set_controls", {"AeEnable": False, "ExposureTime": 12000, "AnalogueGain": 2.0,
                          "AwbEnable": False, "ColourGains": (1.9, 1.4)}),
    ] + [("capture_metadata",)] * SETTLE
    assert locked.as_dict() == {"exposure_time_us": 12000, "analogue_gain": 2.0,
                                "colour_gains": [1.9, 1.4], "lens_position": 3.2}
    assert cam.locked_exposure == locked
    factory.calls.clear()
    cam.unlock_exposure()
    assert factory.calls == [("set_controls", {"AeEnable": True, "AwbEnable": True})]
    assert cam.locked_exposure is None


def test_lock_exposure_without_metadata_is_explained():
    factory = Picamera2Factory(metadata=[{"ExposureTime": 1000}])
    with pytest.raises(CameraError, match="cannot be locked"):
        make(factory).lock_exposure()


def test_capture_writes_the_camera_jpeg_with_our_exif(tmp_path: Path):
    factory = Picamera2Factory()
    cam = make(factory, jpeg_quality=93)
    cam.lock_exposure()
    info = cam.capture(tmp_path / "f.jpg",
                       exif={"angle_deg": 30.0, "datetime": "2024-05-06T07:08:09"})
    capture_calls = [c for c in factory.calls if c[0] in ("capture_file", "wait")]
    assert capture_calls == [
        ("capture_file", {"name": "main", "format": "jpeg", "wait": False, "quality": 93}),
        ("wait", 7.0),
    ]
    exif = read_exif(info.path)
    assert exif["angle_deg"] == 30.0
    assert exif["datetime_original"] == "2024:05:06 07:08:09"
    assert (exif["make"], exif["model"]) == ("Raspberry Pi", "imx708")
    original = Image.open(io.BytesIO(factory.jpeg)).convert("RGB").tobytes()
    assert Image.open(info.path).convert("RGB").tobytes() == original  # not re-encoded
    assert (info.width, info.height) == (64, 48)
    assert info.settings["exposure_locked"] is True
    assert info.settings["exposure_time_us"] == 12000
    assert info.settings["quality"] == 93
    assert cam.capture(tmp_path / "g.jpg", quality=50).settings["quality"] == 50
    assert factory.instances[0].options["quality"] == 50


def test_timeout_closes_the_camera_and_the_next_capture_reopens(tmp_path: Path):
    factory = Picamera2Factory(fail_on={"wait": TimeoutError()})
    cam = make(factory)
    with pytest.raises(CameraTimeout, match="within 7 s"):
        cam.capture(tmp_path / "f.jpg")
    assert factory.names()[-2:] == ["stop", "close"]
    assert not cam.is_open
    assert list(tmp_path.iterdir()) == []  # no half photo, no temp file
    del factory.fail_on["wait"]
    cam.capture(tmp_path / "f.jpg")
    assert len(factory.instances) == 2


def test_capture_error_closes_the_camera(tmp_path: Path):
    factory = Picamera2Factory(fail_on={"capture_file": RuntimeError("dma buffer")})
    cam = make(factory)
    with pytest.raises(CameraError, match="dma buffer"):
        cam.capture(tmp_path / "f.jpg")
    assert factory.names()[-2:] == ["stop", "close"]
    assert not (tmp_path / "f.jpg").exists()


def test_failed_start_still_closes(tmp_path: Path):
    factory = Picamera2Factory(fail_on={"configure": RuntimeError("bad size")})
    cam = make(factory)
    with pytest.raises(CameraError, match="would not start"):
        cam.open()
    assert factory.names()[-2:] == ["stop", "close"]
    assert not cam.is_open


def test_close_survives_a_failing_stop():
    factory = Picamera2Factory(fail_on={"stop": RuntimeError("already stopped")})
    cam = make(factory)
    cam.open()
    cam.close()
    cam.close()
    assert factory.names()[-2:] == ["stop", "close"]
    assert factory.names().count("close") == 1


def test_no_camera_found():
    factory = Picamera2Factory(cameras=0)
    with pytest.raises(CameraUnplugged, match="ribbon cable"):
        make(factory).open()
    assert "Picamera2" not in factory.names()


def test_camera_init_failure_means_unplugged():
    error = RuntimeError("Camera __init__ sequence did not complete.")
    factory = Picamera2Factory(open_error=error)
    with pytest.raises(CameraUnplugged, match="ribbon cable"):
        make(factory).open()


def test_set_resolution_restarts_the_camera():
    factory = Picamera2Factory()
    cam = make(factory)
    cam.lock_exposure()
    cam.set_resolution((1280, 960))
    assert not cam.is_open and cam.locked_exposure is None
    cam.open()
    assert factory.calls.count(("create_still_configuration", {"size": (1280, 960)})) == 1
    assert cam.resolution == (1280, 960)


def test_missing_picamera2_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes `import picamera2` fail
    with pytest.raises(CameraError, match="apt install python3-picamera2"):
        PiCamera(CameraSettings()).open()
