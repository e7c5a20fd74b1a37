"""Angle helpers shared by the turntable drivers (degrees everywhere)."""

from __future__ import annotations

# Positions closer than this are the same position: float sums such as 7 * (360 / 7)
# must land exactly back on 0 rather than on 359.9999999.
EPSILON_DEG = 1e-6


def normalize(angle_deg: float) -> float:
    """Angle folded into [0, 360)."""
    a = angle_deg % 360.0
    if a > 360.0 - EPSILON_DEG or a < EPSILON_DEG:
        return 0.0
    return a


def shortest_delta(from_deg: float, to_deg: float) -> float:
    """Signed turn in (-180, 180] that takes `from_deg` to `to_deg`."""
    d = (to_deg - from_deg) % 360.0
    if d > 180.0:
        d -= 360.0
    if abs(d) < EPSILON_DEG or abs(abs(d) - 360.0) < EPSILON_DEG:
        return 0.0
    return d
