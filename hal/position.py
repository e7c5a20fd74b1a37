"""The rig's position on disk: it survives jobs, worker restarts and power cuts.

Each scan job builds a new rig; a turntable without a home switch would otherwise start
counting at 0 wherever the platter stands. So the position (in driver steps) is written
atomically before and after every move, and read back when the rig opens. A record that
still says "moving" means the process died mid-move (a power cut, a kill): the platter then
stands somewhere between the two positions, and the rig says so instead of guessing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from hal.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

# How the zero was established: by the home switch, by a person ("here is 0°"), or only
# assumed (the platter stood there when the station first started).
ZERO_SOURCES = ("endstop", "hand", "assumed")


@dataclass(frozen=True)
class RigPosition:
    steps: int = 0  # driver steps from zero, signed, not wrapped
    steps_per_rev: float = 0.0  # what `steps` was counted in (a changed config is noticed)
    moving_to: int | None = None  # set while a move runs: the target of that move
    zero: str = "assumed"  # one of ZERO_SOURCES
    tilt_steps: int | None = None  # reserved for a tilt axis
    updated_at: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class PositionStore:
    """Reads and writes one JSON file; every write is atomic and fsynced."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def load(self) -> RigPosition | None:
        """The saved position, or None when there is none (or it cannot be read)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            fields = RigPosition.__dataclass_fields__
            pos = RigPosition(**{k: v for k, v in data.items() if k in fields})
            int(pos.steps)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            log.warning("Ignoring the unreadable rig position file %s: %s", self.path, exc)
            return None
        if pos.zero not in ZERO_SOURCES:
            pos = replace(pos, zero="assumed")
        return pos

    def save(self, position: RigPosition) -> RigPosition:
        stamped = replace(position, updated_at=dt.datetime.now(dt.UTC).isoformat(
            timespec="seconds"))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path, json.dumps(stamped.as_dict(), sort_keys=True).encode())
        return stamped


def position_note(position: RigPosition | None, has_endstop: bool, homed: bool,
                  interrupted: bool) -> tuple[bool, str]:
    """(position_known, one sentence) for describe() and `scanner hal check`."""
    if interrupted:
        return False, ("The last move was cut short (power cut or crash), so the platter "
                       "stands somewhere between two angles: home it, or turn it to 0° and "
                       "run `scanner hal check --set-zero`.")
    if has_endstop and homed:
        return True, "The position is known: the turntable homed on its switch."
    if has_endstop:
        return False, "The position is assumed until the turntable homes on its switch."
    if position is not None and position.zero == "hand":
        return False, ("The position is assumed: there is no home switch, so it is counted "
                       "from the 0° you set by hand and kept across restarts; if the platter "
                       "was turned by hand since, set 0° again with "
                       "`scanner hal check --set-zero`.")
    return False, ("The position is assumed: there is no home switch, so 0° is where the "
                   "platter stood when the station first started; turn it to the real 0° "
                   "and run `scanner hal check --set-zero`.")
