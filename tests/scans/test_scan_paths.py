"""Scan paths (issue 12): rings on POST /api/v1/scans and in profiles, the order frames are
taken in, and the 400s with a sentence for paths the rig cannot take or nobody can finish."""

from __future__ import annotations

import dataclasses
import json

import pytest

from scanner_app.models import Scan
from scanner_app.platform.extensions import db
from scanner_app.scans.path import ScanPath

RINGS = [{"elevation_deg": 10, "frames": 6}, {"elevation_deg": 35, "frames": 4},
         {"elevation_deg": 50, "frames": 3}]


def refused(station, body: dict) -> tuple[str, str]:
    response = station.client.post("/api/v1/scans", json=body)
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert error["message"].endswith(".") and "Traceback" not in error["message"]
    return error["code"], error["message"]


def with_hal(station, **sections) -> None:
    """Change the station's hardware settings for this test (tilt, button)."""
    settings = station.app.config["SCANNER_SETTINGS"]
    hal = settings.hal
    for name, changes in sections.items():
        hal = dataclasses.replace(hal, **{name: dataclasses.replace(getattr(hal, name),
                                                                    **changes)})
    station.app.config["SCANNER_SETTINGS"] = dataclasses.replace(settings, hal=hal)


def test_every_ring_takes_its_angles_from_zero_upward() -> None:
    path = ScanPath.build([(10.0, 4), (35.0, 3), (50.0, 2)], turn_over=True)
    frames = path.frames()
    assert [f.index for f in frames] == list(range(18)) and path.total_frames == 18
    by_ring = [[f.angle_deg for f in frames if f.ring.index == r] for r in range(6)]
    assert by_ring[0] == [0, 90, 180, 270]
    assert by_ring[1] == [0, 120, 240]  # in the order taken, as captures are listed
    assert by_ring[2] == [0, 180]
    assert [f.ring.scan_pass for f in frames] == [1] * 9 + [2] * 9
    assert [f.ring.elevation_deg for f in frames][9:] == [10.0] * 4 + [35.0] * 3 + [50.0] * 2
    assert path.frame(13) == frames[13]
    again = ScanPath.from_json(path.to_json(), 18)
    assert again == path


def test_rings_need_someone_only_when_the_camera_must_be_moved_by_hand() -> None:
    rings = ScanPath.build([(10.0, 4), (35.0, 3)])
    assert rings.needs_operator(motorised_tilt=False)
    assert not rings.needs_operator(motorised_tilt=True)
    assert not ScanPath.single(12).needs_operator(motorised_tilt=False)
    assert ScanPath.build([(10.0, 4)], turn_over=True).needs_operator(motorised_tilt=True)


def test_a_scan_with_rings_plans_all_of_them(make_station) -> None:
    station = make_station()
    scan = station.start_scan(rings=RINGS)
    assert scan["frames_planned"] == 13 and scan["rings_planned"] == 3
    assert scan["current_ring"] == 0 and scan["current_elevation"] == 10
    assert scan["message"] is None
    with station.app.app_context():
        stored = json.loads(db.session.get(Scan, scan["id"]).path)
    assert [(r["elevation_deg"], r["frames"], r["scan_pass"]) for r in stored["rings"]] == [
        (10, 6, 1), (35, 4, 1), (50, 3, 1)]
    station.action(scan["id"], "cancel")
    flipped = station.start_scan(rings=RINGS[:1], turn_over=True)
    assert flipped["frames_planned"] == 12 and flipped["rings_planned"] == 2


def test_a_profile_with_rings_and_a_plain_frames_scan(make_station) -> None:
    station = make_station()
    scan = station.start_scan(profile="photogrammetry")
    assert scan["frames_planned"] == 36 + 24 + 12 and scan["rings_planned"] == 3
    station.action(scan["id"], "cancel")
    plain = station.start_scan(profile="photogrammetry", frames=8)  # frames: one ring
    assert plain["frames_planned"] == 8 and plain["rings_planned"] == 1
    assert plain["current_elevation"] is None  # the rig's own elevation


@pytest.mark.parametrize(("body", "code", "words"), [
    ({"rings": [{"elevation_deg": 75, "frames": 6}]}, "invalid_rings",
     "Ring 1 asks for an elevation of 75°, but this rig's camera tilts from 0° to 60°"),
    ({"rings": [{"elevation_deg": 10, "frames": 6}, {"elevation_deg": -5, "frames": 6}]},
     "invalid_rings", "Ring 2 asks for an elevation of -5°"),
    ({"rings": [{"elevation_deg": 10, "frames": 0}]}, "invalid_frames",
     "Ring 1: 'frames' must be a whole number of at least 1, not 0"),
    ({"rings": [{"elevation_deg": 10, "frames": 400}, {"elevation_deg": 30, "frames": 400}]},
     "invalid_frames", "This scan would take 800 frames; a scan takes at most 720"),
    ({"rings": [{"elevation_deg": 10, "frames": 400}], "turn_over": True},
     "invalid_frames", "would take 800 frames"),
    ({"rings": []}, "invalid_rings", "'rings' must be a list"),
    ({"rings": [{"elevation_deg": "high", "frames": 6}]}, "invalid_rings",
     "'elevation_deg' must be a number"),
    ({"rings": [{"elevation_deg": 10, "frames": 6, "speed": 2}]}, "invalid_rings",
     "exactly 'elevation_deg' and 'frames'"),
    ({"rings": RINGS, "frames": 12}, "invalid_rings", "either 'frames' (one ring) or 'rings'"),
    ({"frames": 0}, "invalid_frames", "A scan takes 1 to 720 frames, not 0"),
    ({"profile": "panorama"}, "invalid_profile", "There is no scan profile 'panorama'"),
    ({"rings": RINGS, "turn_over": "yes"}, "invalid_field", "'turn_over' must be true or false"),
])
def test_paths_the_rig_cannot_take_are_refused_with_a_sentence(make_station, body, code,
                                                               words) -> None:
    station = make_station()
    got_code, message = refused(station, body)
    assert got_code == code and words in message


def test_the_tilt_limits_come_from_the_rig(make_station) -> None:
    station = make_station()
    with_hal(station, tilt={"min_elevation_deg": 15.0, "max_elevation_deg": 40.0})
    _code, message = refused(station, {"rings": RINGS})
    assert "Ring 1 asks for an elevation of 10°" in message and "from 15° to 40°" in message
    station.start_scan(rings=[{"elevation_deg": 15, "frames": 3},
                              {"elevation_deg": 40, "frames": 3}])


def test_a_guided_scan_nobody_could_continue_is_refused(make_station) -> None:
    station = make_station()
    with_hal(station, button={"pin": None})  # no start button, and an API key is no person
    code, message = refused(station, {"rings": RINGS})
    assert code == "guided_scan_unattended"
    assert "nobody could continue it" in message
    code, _ = refused(station, {"rings": RINGS[:1], "turn_over": True})
    assert code == "guided_scan_unattended"
    # One ring needs nobody; a motorised tilt moves the camera itself.
    station.action(station.start_scan(rings=RINGS[:1])["id"], "cancel")
    with_hal(station, tilt={"driver": "servo"})
    assert station.start_scan(rings=RINGS)["frames_planned"] == 13


def test_a_guided_scan_with_a_button_is_accepted(make_station) -> None:
    station = make_station()
    assert station.app.config["SCANNER_SETTINGS"].hal.button.pin is not None
    assert station.start_scan(rings=RINGS)["rings_planned"] == 3
