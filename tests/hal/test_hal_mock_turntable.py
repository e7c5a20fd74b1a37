from __future__ import annotations

import pytest

from hal.errors import TurntableError
from hal.mock.turntable import MockTurntable


def test_moving_takes_time_in_proportion_to_the_angle(sleeps) -> None:
    t = MockTurntable(seconds_per_rev=8.0, sleep=sleeps)
    t.rotate_by(90)
    assert sleeps.total == pytest.approx(2.0)
    assert t.angle_deg == 90
    t.rotate_by(720)
    assert sleeps.total == pytest.approx(18.0)
    assert t.angle_deg == 90


def test_move_to_takes_the_shortest_way(sleeps) -> None:
    t = MockTurntable(seconds_per_rev=8.0, sleep=sleeps)
    t.move_to(270)  # -90 is shorter than +270
    assert t.angle_deg == 270
    assert t.travelled_deg == pytest.approx(90)
    assert sleeps.total == pytest.approx(2.0)
    t.rotate_by(-45)
    assert t.angle_deg == 225


def test_angle_changes_during_a_move(sleeps) -> None:
    t = MockTurntable(seconds_per_rev=8.0, sleep=sleeps, slice_seconds=0.1)
    seen: list[float] = []
    sleeps.hook = lambda: seen.append(t.angle_deg)
    t.rotate_by(90)
    assert len(seen) == 20
    assert seen == sorted(seen)
    # sampled while sleeping, i.e. before each slice of the turn lands
    assert seen[0] == 0 and 0 < seen[1] < seen[-1] < 90 == t.angle_deg


def test_many_small_moves_do_not_drift(sleeps) -> None:
    t = MockTurntable(seconds_per_rev=0, sleep=sleeps)
    for _ in range(7):
        t.rotate_by(360 / 7)
    assert t.angle_deg == 0.0
    assert sleeps.delays == []  # seconds_per_rev=0 moves instantly


@pytest.mark.parametrize(("direction", "travel"), [("forward", 260.0), ("reverse", 100.0)])
def test_homing_turns_to_the_switch_at_zero(sleeps, direction: str, travel: float) -> None:
    t = MockTurntable(seconds_per_rev=8.0, start_angle_deg=100, home_direction=direction,
                      sleep=sleeps)
    assert not t.is_homed
    t.home()
    assert t.is_homed
    assert t.angle_deg == 0
    assert t.travelled_deg == pytest.approx(travel)
    assert sleeps.total == pytest.approx(travel / 360 * 8.0)


def test_motor_is_powered_only_while_moving_unless_holding(sleeps) -> None:
    t = MockTurntable(seconds_per_rev=1.0, sleep=sleeps)
    during: list[bool] = []
    sleeps.hook = lambda: during.append(t.is_enabled)
    t.rotate_by(10)
    assert during and all(during)
    assert not t.is_enabled
    t.hold = True
    t.rotate_by(10)
    assert t.is_enabled
    t.disable()
    assert not t.is_enabled


def test_closed_turntable_refuses_to_move(sleeps) -> None:
    t = MockTurntable(sleep=sleeps)
    t.close()
    with pytest.raises(TurntableError, match="closed"):
        t.rotate_by(10)
