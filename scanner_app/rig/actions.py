"""The manual controls a job can carry out on the rig (what the web asks for by name)."""

from __future__ import annotations

from enum import StrEnum


class RigAction(StrEnum):
    TURN_TO = "turn_to"
    TURN_BY = "turn_by"
    HOME = "home"
    TILT_TO = "tilt_to"

    @property
    def label(self) -> str:
        return {"turn_to": "Turning the platter", "turn_by": "Turning the platter",
                "home": "Homing", "tilt_to": "Tilting the camera"}[self.value]
