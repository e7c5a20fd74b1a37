"""The scan job (scans/run.py, scans/frames.py) on the Raspberry Pi driver path: the real
STEP/DIR turntable and light on gpiozero's MockFactory pins, and the strict Picamera2
stand-in (tests/hal/picamera2_standin.py), run in this process as a work-horse runs it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from hal import HalSettings
from hal.pi.rig import build_rig
from scanner_app.scans import run as scan_run
from scanner_app.scans.pipeline import CapturePipeline
from tests.hal.picamera2_standin import Picamera2Factory
from tests.scans.test_scan_job_failures import run_job
from tests.scans.test_scan_worker import assert_frames_consistent, assert_rig_released

ENABLE, LIGHT = 16, 12  # the default pins (config/hal.toml): ENABLE is active low
FRAMES = 12
CAMERA_TIMEOUT_S = 0.3


@pytest.fixture
def pins() -> Iterator[MockFactory]:
    previous = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.reset()
        Device.pin_factory = previous


@pytest.fixture
def pi_station(make_station, monkeypatch, pins):
    """A station whose scan job loads the Pi rig (MockFactory pins, stand-in camera)."""
    station = make_station()
    monkeypatch.setenv("LG_WD", str(station.data_dir / "run"))  # restored after the test
    settings = HalSettings.from_mapping({
        "driver": "pi", "data_dir": str(station.data_dir),
        "camera": {"capture_timeout_s": CAMERA_TIMEOUT_S, "autofocus_timeout_s": 0.3,
                   "metering_timeout_s": 1.0, "lock_timeout_s": 1.0, "settle_frames": 1},
        "turntable": {"max_speed_deg_s": 36000, "accel_deg_s2": 0},
    })
    station.camera = Picamera2Factory("imx708")
    monkeypatch.setattr(scan_run, "load_rig",
                        lambda hal: build_rig(settings, picamera2_factory=station.camera))
    return station


def test_a_camera_that_never_answers_interrupts_the_scan_in_time_motor_and_light_off(
        pi_station, pins, monkeypatch):
    station = pi_station
    camera = station.camera
    seen: list[tuple[bool, float]] = []
    real = CapturePipeline.submit

    def submit(pipeline: CapturePipeline, frame) -> None:  # a frame taken
        real(pipeline, frame)
        seen.append((pins.pin(ENABLE).state, time.monotonic()))
        if len(seen) == 3:
            camera.hang = True  # the ribbon cable comes loose after the third frame

    monkeypatch.setattr(CapturePipeline, "submit", submit)
    scan = station.start_scan(profile="quick", frames=FRAMES)
    assert run_job(station, scan["id"]) == "interrupted"
    ended = time.monotonic()
    # The next photo waits the capture timeout once (flushed request), then gives up.
    assert ended - seen[-1][1] < CAMERA_TIMEOUT_S * 4 + 1.0
    stopped = station.scan(scan["id"])
    assert stopped["frames_captured"] == 3
    assert stopped["error"].startswith(
        f"The scan stopped at frame 4 of 12: The camera did not answer within "
        f"{CAMERA_TIMEOUT_S} s while taking a photo")
    assert stopped["error"].endswith("resume the scan to continue from frame 4.")
    assert pins.pin(ENABLE).state is True and pins.pin(LIGHT).state is False  # both off
    assert_rig_released(station, stopped)
    assert [enabled for enabled, _ in seen] == [False] * 3  # held (active low) at each frame

    camera.hang = False  # cable pushed back in
    assert station.action(scan["id"], "resume")["status"] == "queued"
    assert run_job(station, scan["id"]) == "completed"
    done = station.scan(scan["id"])
    assert_frames_consistent(station, done, FRAMES)
    assert [enabled for enabled, _ in seen] == [False] * FRAMES
    assert pins.pin(ENABLE).state is True and pins.pin(LIGHT).state is False

    meta = station.metadata(done)
    first, resumed = (r for r in meta["runs"] if r.get("exposure"))
    assert resumed["exposure"] == first["exposure"] and resumed["exposure_reapplied"]
    held = {(f["camera"]["exposure_time_us"], f["camera"]["analogue_gain"]) for f in
            meta["frames"]}
    assert len(held) == 1  # frames before and after the interruption match
    assert meta["rig"]["camera"]["sensor"] == "imx708"  # the camera was open when described
