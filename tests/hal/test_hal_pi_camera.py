"""The Picamera2 driver against a stand-in as strict as the real library (IMX708 and IMX477
control tables from tests/hal/data): items 5-11 of issue 11."""

from __future__ import annotations

import io
import logging
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from hal.errors import CameraError, CameraTimeout, CameraUnplugged
from hal.exif import read_exif
from hal.interfaces import ExposureSettings
from hal.pi.camera import AF_MODE_AUTO, AF_MODE_MANUAL, PiCamera
from hal.settings import CameraSettings
from tests.hal.picamera2_standin import AWB_TARGET, Picamera2Factory

SETTLE = 2


def make(factory: Picamera2Factory, **kw) -> PiCamera:
    base = dict(resolution=(2304, 1296), settle_frames=SETTLE, capture_timeout_s=7.0)
    base.update(kw)
    return PiCamera(CameraSettings(**base), picamera2_factory=factory)


def configured(factory: Picamera2Factory) -> dict:
    return next(c[1] for c in factory.calls if c[0] == "configure")


def test_open_picks_a_full_view_mode_noise_reduction_off_and_autofocus():
    factory = Picamera2Factory("imx708")
    cam = make(factory)
    cam.open()
    cam.open()  # idempotent
    config = configured(factory)
    assert config["main"]["size"] == (2304, 1296)
    assert config["sensor"] == {"output_size": (2304, 1296), "bit_depth": 10}
    assert config["controls"]["NoiseReductionMode"] == 0  # off, over picamera2's HighQuality
    assert ("set_controls", {"AfMode": AF_MODE_AUTO}) in factory.calls
    assert [c for c in factory.calls if c[0] == "capture_metadata"] == \
        [("capture_metadata", 7.0)] * SETTLE  # every wait has a timeout
    described = cam.describe()
    assert described["sensor"] == "imx708"
    assert described["sensor_mode"]["size"] == [2304, 1296]
    assert described["sensor_mode"]["crop_limits"] == [0, 0, 4608, 2592]


def test_hq_profile_sizes_are_changed_to_fit_camera_module_3(caplog):
    factory = Picamera2Factory("imx708")
    cam = make(factory, resolution=(2028, 1520))
    with caplog.at_level(logging.WARNING):
        cam.open()
    assert cam.resolution == (2028, 1140)  # 16:9 like the sensor: nothing cropped away
    assert "4:3 but the imx708 sensor is 16:9" in cam.describe()["size_note"]
    assert "cropped" in caplog.text


def test_hq_camera_keeps_its_own_sizes_and_avoids_the_cropped_mode():
    factory = Picamera2Factory("imx477", legacy_ae=True)
    cam = make(factory, resolution=(2028, 1080))
    cam.open()
    # 2028x1080 is an imx477 mode, but a crop of the sensor: use the full-view 2028x1520.
    assert configured(factory)["sensor"]["output_size"] == (2028, 1520)
    assert cam.describe()["size_note"] is not None  # 1.88:1 is not the sensor's 4:3


def test_manual_lens_position_and_full_sensor_size():
    factory = Picamera2Factory("imx708")
    cam = make(factory, lens_position=2.5, resolution=(0, 0))
    cam.open()
    assert ("set_controls", {"AfMode": AF_MODE_MANUAL, "LensPosition": 2.5}) in factory.calls
    assert configured(factory)["main"]["size"] == (4608, 2592)


def test_fixed_focus_camera_gets_no_focus_controls():
    factory = Picamera2Factory("imx477", legacy_ae=True)
    cam = make(factory, resolution=(2028, 1520))
    cam.lock_exposure()
    assert not any(c[0] == "autofocus_cycle" for c in factory.calls)
    assert "LensPosition" not in factory.instances[0].camera_controls


@pytest.mark.parametrize(("sensor", "legacy"), [("imx708", False), ("imx477", True)])
def test_lock_waits_for_ae_and_stable_white_balance_then_confirms(sensor, legacy):
    factory = Picamera2Factory(sensor, legacy_ae=legacy, ae_frames=3, awb_frames=8)
    cam = make(factory, resolution=(2028, 1520) if legacy else (2304, 1296))
    locked = cam.lock_exposure()
    assert locked.exposure_time_us == 12000
    assert locked.analogue_gain == pytest.approx(2.0 * 1.1)  # DigitalGain folded in
    assert locked.colour_gains == pytest.approx(AWB_TARGET)  # AWB settled, not mid-way
    assert cam.describe()["metering_converged"] is True
    lock = next(c[1] for c in factory.calls if c[0] == "set_controls" and
                "ExposureTime" in c[1])
    assert lock["AeEnable"] is False
    assert lock["ExposureTime"] == 12000 and lock["AwbEnable"] is False
    assert ("ExposureTimeMode" in lock) is (not legacy)  # libcamera 0.5 names it outright
    # Frames were read after the lock until the values were in effect (2 frames later:
    # before that AE still ran, splitting the same brightness into analogue x digital).
    after = factory.calls[factory.calls.index(("set_controls", lock)) + 1:]
    assert [c[0] for c in after].count("capture_metadata") >= factory.control_delay
    md = factory.instances[0].capture_metadata(wait=1.0)
    assert (md["ExposureTime"], md["AnalogueGain"]) == (12000, pytest.approx(2.2))


def test_a_libcamera_without_ae_enable_is_locked_by_the_mode_controls(tmp_path: Path):
    factory = Picamera2Factory("imx708", drop_controls=("AeEnable",))
    cam = make(factory)
    locked = cam.lock_exposure()  # would raise "not advertised" if AeEnable were sent
    lock = next(c[1] for c in factory.calls if c[0] == "set_controls" and "ExposureTime" in c[1])
    assert "AeEnable" not in lock
    assert (lock["ExposureTimeMode"], lock["AnalogueGainMode"]) == (1, 1)
    assert cam.capture(tmp_path / "f.jpg").settings["exposure_time_us"] == \
        locked.exposure_time_us


def test_metering_that_never_settles_is_bounded_and_warned(caplog):
    factory = Picamera2Factory("imx708", awb_wobble=0.05)  # flickering light
    cam = make(factory, metering_timeout_s=0.05, metering_frames=10**6)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        cam.lock_exposure()
    assert time.monotonic() - started < 2
    assert "had not settled" in caplog.text
    assert cam.describe()["metering_converged"] is False


def test_a_lock_that_never_takes_effect_is_an_error():
    factory = Picamera2Factory("imx708", control_delay=10**9)
    cam = make(factory, lock_timeout_s=0.05)
    with pytest.raises(CameraError, match="did not take the locked exposure"):
        cam.apply_exposure(ExposureSettings(30000, 4.0, (1.6, 1.3)))


def test_apply_exposure_on_resume_gives_the_same_frames(tmp_path: Path):
    first = make(Picamera2Factory("imx708"))
    saved = first.lock_exposure()
    before = first.capture(tmp_path / "a.jpg").settings
    first.close()
    factory = Picamera2Factory("imx708")  # worker restarted: a new camera, AE from scratch
    cam = make(factory)
    assert cam.apply_exposure(saved) == saved
    lock = next(c for c in factory.calls if c[0] == "set_controls" and "ExposureTime" in c[1])
    read = [c[0] for c in factory.calls[factory.calls.index(lock):]]
    assert read.count("capture_metadata") > factory.control_delay  # confirmed on the frames
    after = cam.capture(tmp_path / "b.jpg").settings
    assert not any(c[0] == "autofocus_cycle" for c in factory.calls)  # no re-metering
    for key in ("exposure_time_us", "analogue_gain", "colour_gains", "lens_position"):
        assert after[key] == pytest.approx(before[key]), key


def test_out_of_range_gain_is_clamped_like_libcamera_and_confirmed():
    cam = make(Picamera2Factory("imx708"))
    held = cam.apply_exposure(ExposureSettings(20000, 40.0, (1.5, 1.5)))
    assert held.analogue_gain == 16.0  # the imx708's analogue maximum


def test_capture_uses_a_flushed_request_and_writes_our_exif(tmp_path: Path):
    factory = Picamera2Factory("imx708")
    cam = make(factory, jpeg_quality=93)
    cam.lock_exposure()
    standin = factory.instances[0]
    called = standin.clock()
    stale = standin.capture_metadata(wait=1.0)  # what an unflushed capture would get
    assert stale["SensorTimestamp"] - 1000 * stale["ExposureTime"] < called
    info = cam.capture(tmp_path / "f.jpg",
                       exif={"angle_deg": 30.0, "datetime": "2024-05-06T07:08:09"})
    request = factory.instances[0].requests[-1]
    assert ("capture_request", 7.0, True) in factory.calls
    assert request.exposure_start_ns >= request.called_ns  # exposed after the call
    assert request.released
    exif = read_exif(info.path)
    assert exif["angle_deg"] == 30.0
    assert (exif["make"], exif["model"]) == ("Raspberry Pi", "imx708")
    assert exif["focal_length_mm"] == pytest.approx(4.74)
    assert exif["focal_length_35mm"] == 28  # 4.74 mm on a 7.4 mm diagonal
    original = Image.open(io.BytesIO(factory.jpeg_for((2304, 1296)))).convert("RGB")
    assert Image.open(info.path).convert("RGB").tobytes() == original.tobytes()
    assert (info.width, info.height) == (2304, 1296)
    assert info.settings["exposure_locked"] is True and info.settings["quality"] == 93


def test_hq_lens_focal_length_comes_from_the_config(tmp_path: Path):
    cam = make(Picamera2Factory("imx477", legacy_ae=True), resolution=(2028, 1520),
               focal_length_mm=16.0)
    exif = read_exif(cam.capture(tmp_path / "f.jpg").path)
    assert (exif["focal_length_mm"], exif["focal_length_35mm"]) == (16.0, 88)


@pytest.mark.parametrize("where", ["open", "lock", "capture"])
def test_a_camera_that_never_answers_times_out_and_is_closed(tmp_path: Path, where: str):
    factory = Picamera2Factory("imx708")
    cam = make(factory, capture_timeout_s=0.1, autofocus_timeout_s=0.1)
    if where != "open":
        cam.open()
    factory.hang = True
    started = time.monotonic()
    with pytest.raises(CameraTimeout, match="within 0.1 s"):
        {"open": cam.open, "lock": cam.lock_exposure,
         "capture": lambda: cam.capture(tmp_path / "f.jpg")}[where]()
    assert time.monotonic() - started < 1.0
    assert not cam.is_open and factory.names()[-2:] == ["stop", "close"]
    assert list(tmp_path.iterdir()) == []
    factory.hang = False
    cam.capture(tmp_path / "f.jpg")  # reopens
    assert len(factory.instances) == 2


def test_capture_error_closes_the_camera(tmp_path: Path):
    factory = Picamera2Factory("imx708", fail_on={"capture_request": RuntimeError("dma")})
    cam = make(factory)
    with pytest.raises(CameraError, match="dma"):
        cam.capture(tmp_path / "f.jpg")
    assert factory.names()[-2:] == ["stop", "close"]
    assert not (tmp_path / "f.jpg").exists()


def test_failed_start_still_closes():
    factory = Picamera2Factory("imx708", fail_on={"configure": RuntimeError("bad size")})
    cam = make(factory)
    with pytest.raises(CameraError, match="would not start"):
        cam.open()
    assert factory.names()[-2:] == ["stop", "close"]
    assert not cam.is_open


def test_close_survives_a_failing_stop():
    factory = Picamera2Factory("imx708", fail_on={"stop": RuntimeError("already stopped")})
    cam = make(factory)
    cam.open()
    cam.close()
    cam.close()
    assert factory.names().count("close") == 1


def test_no_camera_found():
    factory = Picamera2Factory("imx708", cameras=0)
    with pytest.raises(CameraUnplugged, match="ribbon cable"):
        make(factory).open()
    assert "Picamera2" not in factory.names()


def test_camera_init_failure_means_unplugged():
    error = RuntimeError("Camera __init__ sequence did not complete.")
    with pytest.raises(CameraUnplugged, match="ribbon cable"):
        make(Picamera2Factory("imx708", open_error=error)).open()


def test_set_resolution_restarts_the_camera():
    factory = Picamera2Factory("imx708")
    cam = make(factory)
    cam.lock_exposure()
    cam.set_resolution((1536, 864))
    assert not cam.is_open and cam.locked_exposure is None
    cam.open()
    assert cam.resolution == (1536, 864)
    # The 1536x864 mode is a centre crop of the sensor: the full-view 2304x1296 is used.
    assert configured(factory.instances[1].factory)["sensor"]["output_size"] == (2304, 1296)


def test_missing_picamera2_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes `import picamera2` fail
    with pytest.raises(CameraError, match="apt install python3-picamera2"):
        PiCamera(CameraSettings()).open()
