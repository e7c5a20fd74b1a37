"""Manual controls through the JSON API, carried out by a real `scanner worker` on the mock
rig: the platter's TRUE angle (hal/mock/platter.py, apart from the driver's belief) follows,
the motor is released after each control, and every control is refused with a sentence while
a scan is queued, running or paused. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from hal.angles import shortest_delta
from hal.tilt_mock import MockArm


def _close(a: float, b: float, tolerance: float = 0.01) -> bool:
    return abs(shortest_delta(a, b)) <= tolerance


def test_turn_home_and_step_move_the_true_platter(make_station, database_url) -> None:
    station = make_station(database_url)
    station.start_worker()
    station.hal.platter_file.parent.mkdir(parents=True, exist_ok=True)

    answer = station.post("/home")
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["rig"]["state"]["angle_deg"] == 0
    assert _close(station.true_angle(), 0)

    answer = station.post("/turn", {"to": 90})
    assert answer.status_code == 200, answer.get_json()
    rig = answer.get_json()["rig"]
    assert rig["state"]["angle_deg"] == pytest.approx(90)
    assert rig["busy"] is None and rig["mock_hardware"] is True
    assert _close(station.true_angle(), 90)  # the platter really turned (90° is a detent)
    assert not station.motor_energised()  # released after the control

    answer = station.post("/turn", {"by": -45})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["rig"]["state"]["angle_deg"] == pytest.approx(45)
    assert _close(station.true_angle(), 45)

    # The state the last control left is what GET shows (no hardware touched for it).
    state = station.client.get("/api/v1/rig").get_json()["rig"]["state"]
    assert state["angle_deg"] == pytest.approx(45) and state["light_on"] is False

    # Home turns back to 0° (the configured mock rig has no home switch: its believed 0°).
    assert station.post("/home").get_json()["rig"]["state"]["angle_deg"] == 0
    assert _close(station.true_angle(), 0)


def test_tilt_moves_the_true_arm_where_the_rig_has_a_tilt_axis(make_station) -> None:
    station = make_station(SCANNER_TILT="step_dir")
    station.start_worker()
    answer = station.post("/tilt", {"to": 30})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["rig"]["state"]["tilt"]["elevation_deg"] == pytest.approx(30)
    arm = MockArm(station.hal.arm_file, station.hal.tilt.rest_elevation_deg)
    assert arm.true_elevation() == pytest.approx(30, abs=0.05)


def test_tilt_without_a_tilt_axis_says_so(make_station) -> None:
    station = make_station()
    station.start_worker()
    answer = station.post("/tilt", {"to": 30})
    assert answer.status_code == 409
    assert "This rig has no tilt axis: set the camera's elevation by hand." in \
        answer.get_json()["error"]["message"]


def test_controls_are_refused_while_a_scan_is_active(make_station, database_url) -> None:
    station = make_station(database_url)  # no worker: the scan stays queued
    scan = station.client.post("/api/v1/scans", json={"frames": 4}).get_json()["scan"]
    for path, body in (("/turn", {"to": 10}), ("/turn", {"by": 5}), ("/home", None),
                       ("/tilt", {"to": 20}), ("/light", {"on": True}), ("/snapshot", None)):
        answer = station.post(path, body)
        assert answer.status_code == 409, (path, answer.get_json())
        message = answer.get_json()["error"]["message"]
        assert message.startswith(f"Scan {scan['id']} is queued") or \
            f"Scan {scan['id']} is queued" in message, message
        assert "wait for it to finish or cancel it" in message or "Wait for it" in message
    assert station.redis.llen("rq:queue:hardware") == 1  # only the scan's job: nothing queued


def test_no_worker_and_bad_values_are_sentences(make_station) -> None:
    station = make_station()
    answer = station.post("/turn", {"to": 10})
    assert answer.status_code == 409
    assert answer.get_json()["error"]["message"].startswith("No worker drives the rig")
    for body in ({"to": 400}, {"to": "north"}, {"by": 1000}, {"to": 1, "by": 2}, {},
                 {"to": True}, {"to": "nan"}):
        answer = station.post("/turn", body)
        assert answer.status_code == 400, body
        assert answer.get_json()["error"]["message"].endswith(".")
    assert station.post("/light", {"on": "yes"}).status_code == 400
    assert station.redis.llen("rq:queue:hardware") == 0
