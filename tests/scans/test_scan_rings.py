"""Issue 12 through real `scanner worker` processes and the mock rig: a scan of several rings
with a motorised tilt, and the same guided (no tilt: the scan pauses between rings with a
message until the camera is set and Resume is pressed). The mock camera photographs the mock
arm's TRUE elevation and the platter's TRUE angle, so the recorded ring, elevation and angle
of every frame are checked against what was physically photographed."""

from __future__ import annotations

import numpy as np
from PIL import Image

from hal.mock.rig import build_arm
from hal.mock.scene import MockScene
from tests.scans.conftest import Station

RINGS = [{"elevation_deg": 10, "frames": 4}, {"elevation_deg": 30, "frames": 3},
         {"elevation_deg": 50, "frames": 3}]
WORKER = "rings"
# The quick profile's timing with 640x480 frames: 1280x960 ones, rendered by the worker and
# twice more per frame by the check below, were much of these tests' time. At this size the
# check's right/wrong ratio is about 0.1 (0.07 at 1280x960), well under its 0.3.
SMALL = {"frames": 12, "settle_seconds": 0.2, "resolution": [640, 480], "jpeg_quality": 90}


def small_quick(station: Station) -> str:
    response = station.client.put("/api/v1/profiles/small-quick", json=SMALL)
    assert response.status_code in (200, 201), response.get_json()
    return "small-quick"


def scan_captures(station: Station, scan: dict) -> list[dict]:
    return [c for c in station.captures(scan["session_id"]) if c["scan_id"] == scan["id"]]


def assert_photographed_where_recorded(station: Station, scan: dict, scene: MockScene) -> None:
    """Each frame shows the view from its recorded elevation and angle, not another ring's."""
    for c in scan_captures(station, scan):
        shot = np.asarray(Image.open(station.session_dir(scan["session_id"]) / c["path"]),
                          np.float32)
        size = (shot.shape[1], shot.shape[0])
        right = scene.render(c["elevation_deg"], c["angle_deg"], size).rgb.astype(np.float32)
        wrong = scene.render(c["elevation_deg"] + 12, c["angle_deg"], size).rgb
        assert np.abs(shot - right).mean() < 0.3 * np.abs(shot - wrong).mean(), c


def test_rings_with_a_tilt_axis(make_station) -> None:
    station = make_station(SCANNER_TILT="step_dir")
    station.start_worker("--name", WORKER)
    scan = station.start_scan(profile=small_quick(station), rings=RINGS)
    done = station.wait_for_status(scan["id"], "completed", timeout=120)
    assert done["frames_captured"] == 10 and done["percent"] == 100.0
    assert done["message"] is None and done["eta_seconds"] == 0
    captures = scan_captures(station, scan)
    # Taken ring by ring, each ring's angles from 0 up (CONTRACT), in the order taken.
    assert [(c["ring"], c["elevation_deg"]) for c in captures] == (
        [(0, 10.0)] * 4 + [(1, 30.0)] * 3 + [(2, 50.0)] * 3)
    assert [c["angle_deg"] for c in captures] == [0, 90, 180, 270, 0, 120, 240, 0, 120, 240]
    assert all(c["pass"] == 1 for c in captures)
    settings = station.app.config["SCANNER_SETTINGS"].hal
    assert build_arm(settings).true_elevation() == 50  # the arm was really moved
    assert_photographed_where_recorded(station, scan, MockScene())
    meta = station.metadata(done)
    assert meta["rig"]["tilt"]["driver"] == "step_dir"
    assert [r["elevation_deg"] for r in meta["path"]] == [10, 30, 50]
    assert meta["poses"]["nominal"] is True  # no calibration on this station
    assert [f["ring"] for f in meta["frames"]] == [c["ring"] for c in captures]


def test_rings_without_a_tilt_are_guided(make_station) -> None:
    station = make_station()  # [hal.tilt] driver "none": the operator sets the camera
    station.start_worker("--name", WORKER)
    arm = build_arm(station.app.config["SCANNER_SETTINGS"].hal)
    rings = [{"elevation_deg": 15, "frames": 3}, {"elevation_deg": 35, "frames": 2}]
    scan = station.start_scan(profile=small_quick(station), rings=rings)
    for elevation, taken in ((15, 0), (35, 3)):
        asked = f"Set the camera to {elevation}° and press the button or Resume."
        waiting = station.wait_for_scan(
            scan["id"], lambda s, asked=asked: s["status"] == "paused" and s["message"] == asked,
            f"asking for {elevation}°", timeout=60)
        assert waiting["frames_captured"] == taken and waiting["eta_seconds"] is None
        assert waiting["current_ring"] == (0 if taken == 0 else 1)
        arm.set_true_elevation(elevation)  # the operator's hand
        resumed = station.action(scan["id"], "resume")
        assert resumed["status"] in ("paused", "running")
    done = station.wait_for_status(scan["id"], "completed", timeout=60)
    assert done["message"] is None
    captures = scan_captures(station, scan)
    assert [c["elevation_deg"] for c in captures] == [15.0] * 3 + [35.0] * 2
    assert [c["angle_deg"] for c in captures] == [0, 120, 240, 0, 180]
    assert_photographed_where_recorded(station, scan, MockScene())


def test_a_turn_over_pass_waits_for_the_object_to_be_turned(make_station) -> None:
    station = make_station(SCANNER_TILT="servo")
    station.start_worker("--name", WORKER)
    scan = station.start_scan(profile=small_quick(station),
                              rings=[{"elevation_deg": 20, "frames": 3}], turn_over=True)
    asked = "Turn the object over on the platter and press the button or Resume."
    waiting = station.wait_for_scan(
        scan["id"], lambda s: s["status"] == "paused" and s["message"] == asked,
        "asking to turn the object over", timeout=60)
    assert waiting["frames_captured"] == 3 and waiting["current_pass"] == 2
    station.action(scan["id"], "resume")
    done = station.wait_for_status(scan["id"], "completed", timeout=60)
    assert done["message"] is None
    captures = scan_captures(station, scan)
    assert [(c["pass"], c["ring"], c["angle_deg"]) for c in captures] == [
        (1, 0, 0), (1, 0, 120), (1, 0, 240), (2, 1, 0), (2, 1, 120), (2, 1, 240)]


def test_a_guided_scan_stopped_while_waiting_asks_again_when_resumed(make_station) -> None:
    station = make_station()
    worker = station.start_worker("--name", WORKER)
    arm = build_arm(station.app.config["SCANNER_SETTINGS"].hal)
    arm.set_true_elevation(15)
    rings = [{"elevation_deg": 15, "frames": 2}, {"elevation_deg": 35, "frames": 2}]
    scan = station.start_scan(profile=small_quick(station), rings=rings)
    first = "Set the camera to 15° and press the button or Resume."
    second = "Set the camera to 35° and press the button or Resume."
    station.wait_for_scan(scan["id"], lambda s: s["message"] == first, "asking for 15°", 60)
    station.action(scan["id"], "resume")
    station.wait_for_scan(scan["id"], lambda s: s["message"] == second, "asking for 35°", 60)
    station.stop_workers()  # the worker shuts down while the scan waits for the operator
    stopped = station.wait_for_status(scan["id"], "interrupted", timeout=30)
    assert stopped["message"] is None and stopped["frames_captured"] == 2
    assert worker.poll() is not None
    station.start_worker("--name", WORKER + "-2")
    station.action(scan["id"], "resume")
    station.wait_for_scan(scan["id"], lambda s: s["message"] == second, "asking again", 60)
    arm.set_true_elevation(35)
    station.action(scan["id"], "resume")
    station.wait_for_status(scan["id"], "completed", timeout=60)
    captures = scan_captures(station, scan)
    assert [(c["elevation_deg"], c["angle_deg"]) for c in captures] == [
        (15.0, 0), (15.0, 180), (35.0, 0), (35.0, 180)]
    assert_photographed_where_recorded(station, scan, MockScene())
