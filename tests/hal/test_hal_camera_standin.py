"""The Picamera2 stand-in is only worth something if it refuses what the real library
refuses: these pin its strictness, and the sensor-fit helpers the driver relies on."""

from __future__ import annotations

import time

import pytest

from hal.sensors import choose_mode, fit_size, focal_lengths
from tests.hal.picamera2_standin import Job, Picamera2Factory, sensor


def started(name: str = "imx708", **kw):
    cam = Picamera2Factory(name, **kw)(0)
    cam.configure(cam.create_still_configuration(main={"size": (2304, 1296)}))
    cam.start()
    return cam


def test_control_tables_are_the_real_cameras():
    imx708, imx477 = sensor("imx708"), sensor("imx477")
    assert imx708["camera_controls"]["LensPosition"] == (0.0, 15.0, 1.0)
    assert "AfMode" not in imx477["camera_controls"]  # the HQ camera has no autofocus
    assert imx477["camera_controls"]["AnalogueGain"][1] == pytest.approx(22.26, abs=0.01)
    assert [m["size"] for m in imx708["sensor_modes"]] == [(1536, 864), (2304, 1296),
                                                           (4608, 2592)]


def test_unknown_controls_are_refused_like_picamera2():
    cam = started()
    with pytest.raises(RuntimeError, match="Control AeLocked is not advertised by libcamera"):
        cam.set_controls({"AeLocked": True})
    hq = started("imx477")
    with pytest.raises(RuntimeError, match="AfMode"):
        hq.autofocus_cycle(wait=1.0)
    hq.stop()
    with pytest.raises(RuntimeError, match="not advertised"):
        hq.configure(hq.create_still_configuration(controls={"LensPosition": 1.0}))


def test_controls_land_two_frames_later_and_are_clamped():
    cam = started()
    for _ in range(5):
        cam.capture_metadata(wait=1.0)
    cam.set_controls({"AeEnable": False, "ExposureTime": 10**10, "AnalogueGain": 0.5})
    seen = [cam.capture_metadata(wait=1.0) for _ in range(4)]
    assert seen[0]["AeState"] == 2  # still the auto-exposed frames
    assert seen[-1]["AeState"] == 0
    assert seen[-1]["ExposureTime"] == 220416802  # clamped to the sensor's range
    assert seen[-1]["AnalogueGain"] == pytest.approx(1.1228, abs=1e-3)


def test_new_libcamera_sends_ae_state_old_sends_ae_locked():
    assert "AeState" in started().capture_metadata(wait=1.0)
    old = started("imx477", legacy_ae=True).capture_metadata(wait=1.0)
    assert "AeLocked" in old and "AeState" not in old


def test_wait_false_gives_a_job_and_a_number_is_a_timeout():
    cam = started()
    job = cam.capture_metadata(wait=False)
    assert isinstance(job, Job)
    assert "ExposureTime" in cam.wait(job, timeout=1.0)
    hung = started(hang=True)
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        hung.capture_request(wait=0.05, flush=True)
    assert 0.05 <= time.monotonic() - began < 0.5
    with pytest.raises(AssertionError, match="block for ever"):
        hung.capture_metadata()  # no timeout on a camera that never answers
    with pytest.raises(TimeoutError):
        hung.wait(hung.capture_metadata(wait=False), timeout=0.01)


def test_still_configuration_is_shaped_like_picamera2s():
    cam = Picamera2Factory("imx708")(0)
    config = cam.create_still_configuration(main={"size": (2304, 1296)},
                                            controls={"NoiseReductionMode": 0})
    assert set(config) >= {"use_case", "transform", "colour_space", "buffer_count", "queue",
                           "main", "lores", "raw", "controls", "sensor", "display", "encode"}
    assert config["use_case"] == "still" and config["buffer_count"] == 1
    assert config["controls"]["NoiseReductionMode"] == 0  # the caller's value wins
    assert config["controls"]["FrameDurationLimits"] == (100, 1000000000)
    with pytest.raises(RuntimeError, match="not a mode"):
        cam.configure({**config, "sensor": {"output_size": (1920, 1080), "bit_depth": 10}})


def test_a_request_is_released_once():
    cam = started()
    request = cam.capture_request(wait=1.0, flush=True)
    request.release()
    with pytest.raises(RuntimeError, match="ref_count"):
        request.release()


@pytest.mark.parametrize(("requested", "full", "size", "says"), [
    ((1280, 960), (4608, 2592), (1280, 720), "4:3 but the imx708 sensor is 16:9"),
    ((4056, 3040), (3280, 2464), (3280, 2464), "upscaled"),
    ((2028, 1520), (4056, 3040), (2028, 1520), None),
    ((0, 0), (4056, 3040), (4056, 3040), None),
])
def test_fit_size(requested, full, size, says):
    got, note = fit_size(requested, full, "imx708" if full[0] == 4608 else "sensor")
    assert got == size
    assert (note is None) if says is None else (says in note)


def test_choose_mode_prefers_the_full_field_of_view():
    modes = sensor("imx477")["sensor_modes"]
    assert choose_mode((1280, 960), modes, (4056, 3040))["size"] == (2028, 1520)
    assert choose_mode((4056, 3040), modes, (4056, 3040))["size"] == (4056, 3040)
    assert choose_mode((100, 100), [], (4056, 3040)) is None


def test_focal_lengths():
    assert focal_lengths("imx708", 0, (0, 0, 4608, 2592)) == (4.74, 28)
    assert focal_lengths("imx708_noir", 0, (768, 432, 3072, 1728)) == (4.74, 42)  # cropped
    assert focal_lengths("imx477", 0, None) == (None, None)  # interchangeable lens: unknown
    assert focal_lengths("imx477", 6.0, None) == (6.0, 33)
