"""Stepper speed profiles: how long to wait after each step.

A stepper cannot jump to full speed: it stalls and loses steps, and a scan that lost steps
photographs the wrong angles. So moves follow a trapezoid: accelerate at `accel`, cruise at
`max_speed`, decelerate to stop exactly on the last step. Units are steps and seconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterator


def step_delays(n_steps: int, max_speed: float, accel: float) -> Iterator[float]:
    """Seconds between step `i` and step `i + 1`, for `i` in range(n_steps).

    Speed at a step is the lowest of: the cruise speed, what acceleration allows since the
    start, and what deceleration allows before the end (v^2 = v0^2 + 2 a s). `accel <= 0`
    means no ramp (constant speed), fine for slow motors such as the 28BYJ-48.
    """
    if n_steps <= 0:
        return
    if max_speed <= 0:
        raise ValueError("max_speed must be greater than 0")
    if accel <= 0:
        for _ in range(n_steps):
            yield 1.0 / max_speed
        return
    v0_sq = 2.0 * accel  # the speed reached after one step from rest
    for i in range(n_steps):
        from_start = v0_sq + 2.0 * accel * i
        to_end = v0_sq + 2.0 * accel * (n_steps - 1 - i)
        speed = min(max_speed, math.sqrt(min(from_start, to_end)))
        yield 1.0 / speed


def move_seconds(n_steps: int, max_speed: float, accel: float) -> float:
    """Total time a move of `n_steps` takes with `step_delays` (for progress estimates)."""
    return sum(step_delays(n_steps, max_speed, accel))
