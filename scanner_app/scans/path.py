"""A scan's path: its rings (camera elevation + frames around one turn), in one or two passes.

`{"rings": [{"elevation_deg": 10, "frames": 36}, {"elevation_deg": 35, "frames": 24}]}` on
POST /api/v1/scans or in a profile; a plain `frames` is one ring at the rig's elevation
(`elevation_deg` None: wherever the arm stands). With `turn_over` the same rings are taken
again as pass 2, after the operator turned the object over.

Frames are numbered 0..N-1 in the order they are taken. Every ring's angles are 0, step, 2
step, ... (step = 360 / frames); rings alternate direction, so each ring starts where the
last one ended instead of turning back to 0: ring 0 goes 0 -> 350, ring 1 350 -> 0, and so on.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

from scanner_app.config import ScanProfile, Settings
from scanner_app.platform.errors import BadRequest


@dataclass(frozen=True)
class Ring:
    index: int  # 0-based over the whole scan (both passes)
    scan_pass: int  # 1; 2 after the object was turned over
    elevation_deg: float | None  # None: the rig's own elevation
    frames: int
    first_frame: int  # frame number of its first frame
    descending: bool  # taken from the highest angle down to 0

    @property
    def step_deg(self) -> float:
        return 360.0 / self.frames

    def angle_of(self, k: int) -> float:
        """Angle of the ring's k-th frame in taking order."""
        slot = self.frames - 1 - k if self.descending else k
        return round(slot * self.step_deg, 6)


@dataclass(frozen=True)
class PlannedFrame:
    index: int
    ring: Ring
    angle_deg: float


@dataclass(frozen=True)
class ScanPath:
    rings: tuple[Ring, ...]

    @classmethod
    def build(cls, rings: list[tuple[float | None, int]], turn_over: bool = False) -> ScanPath:
        specs = [(e, n, 1) for e, n in rings]
        if turn_over:
            specs += [(e, n, 2) for e, n in rings]
        built, first = [], 0
        # Every ring ascends from 0° (CONTRACT: "angle_deg from 0 upward within each ring",
        # captures listed oldest first). A ring ends one step short of 360°, so the next
        # ring's 0° is one step further on: ascending is also the shortest way round.
        for i, (elevation, frames, scan_pass) in enumerate(specs):
            built.append(Ring(i, scan_pass, elevation, frames, first, descending=False))
            first += frames
        return cls(tuple(built))

    @classmethod
    def single(cls, frames: int) -> ScanPath:
        """A scan from before rings: one ring at the rig's elevation."""
        return cls.build([(None, frames)])

    @property
    def total_frames(self) -> int:
        return sum(r.frames for r in self.rings)

    @property
    def passes(self) -> int:
        return max(r.scan_pass for r in self.rings)

    def frames(self) -> list[PlannedFrame]:
        """Every frame in taking order."""
        return [PlannedFrame(r.first_frame + k, r, r.angle_of(k))
                for r in self.rings for k in range(r.frames)]

    def frame(self, index: int) -> PlannedFrame:
        for r in self.rings:
            if r.first_frame <= index < r.first_frame + r.frames:
                return PlannedFrame(index, r, r.angle_of(index - r.first_frame))
        raise IndexError(f"frame {index} is not on this path")

    def needs_operator(self, motorised_tilt: bool) -> bool:
        """Whether someone must act between rings: set the elevation by hand (no tilt
        axis and more than one elevation), or turn the object over."""
        if self.passes > 1:
            return True
        elevations = {r.elevation_deg for r in self.rings}
        return not motorised_tilt and len(self.rings) > 1 and len(elevations) > 1

    def to_json(self) -> str:
        return json.dumps({"rings": [asdict(r) for r in self.rings]})

    @classmethod
    def from_json(cls, text: str | None, frames_planned: int) -> ScanPath:
        if not text:
            return cls.single(frames_planned)
        return cls(tuple(Ring(**r) for r in json.loads(text)["rings"]))

    def describe(self) -> list[dict[str, Any]]:
        return [{"ring": r.index, "pass": r.scan_pass, "elevation_deg": r.elevation_deg,
                 "frames": r.frames, "first_frame": r.first_frame,
                 "direction": "descending" if r.descending else "ascending"}
                for r in self.rings]


# --- from a request or a profile ---------------------------------------------------------

RINGS_SHAPE = ("'rings' must be a list like [{\"elevation_deg\": 10, \"frames\": 36}, "
               "{\"elevation_deg\": 35, \"frames\": 24}].")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _requested_rings(rings: Any) -> list[tuple[float, int]]:
    if not isinstance(rings, list) or not rings:
        raise BadRequest(RINGS_SHAPE, code="invalid_rings")
    parsed = []
    for n, ring in enumerate(rings, start=1):
        if not isinstance(ring, dict) or set(ring) != {"elevation_deg", "frames"}:
            raise BadRequest(f"Ring {n}: each ring takes exactly 'elevation_deg' and 'frames'. "
                             + RINGS_SHAPE, code="invalid_rings")
        elevation, frames = _number(ring["elevation_deg"]), ring["frames"]
        if elevation is None:
            raise BadRequest(f"Ring {n}: 'elevation_deg' must be a number of degrees.",
                             code="invalid_rings")
        if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
            raise BadRequest(f"Ring {n}: 'frames' must be a whole number of at least 1, not "
                             f"{frames!r}.", code="invalid_frames")
        parsed.append((elevation, frames))
    return parsed


def plan_path(settings: Settings, profile: ScanProfile, *, frames: Any = None,
              rings: Any = None, turn_over: Any = None) -> ScanPath:
    """The path a new scan takes, checked against the rig: BadRequest with a sentence for
    rings outside the tilt's limits, no frames, or more frames than a scan may take."""
    if frames is not None and rings is not None:
        raise BadRequest("Give either 'frames' (one ring) or 'rings', not both.",
                         code="invalid_rings")
    if turn_over is not None and not isinstance(turn_over, bool):
        raise BadRequest("'turn_over' must be true or false.", code="invalid_field")
    flip = profile.turn_over if turn_over is None else turn_over
    if rings is not None:
        wanted: list[tuple[float | None, int]] = list(_requested_rings(rings))
    elif frames is None and profile.rings:
        wanted = list(profile.rings)
    else:
        count = profile.frames if frames is None else frames
        most = settings.max_scan_frames
        if isinstance(count, bool) or not isinstance(count, int):
            raise BadRequest(f"'frames' must be a whole number from 1 to {most}.",
                             code="invalid_frames")
        if not 1 <= count <= most:
            raise BadRequest(f"A scan takes 1 to {most} frames, not {count}. The "
                             f"{profile.name!r} profile takes {profile.frames}.",
                             code="invalid_frames")
        wanted = [(None, count)]
    tilt = settings.hal.tilt
    for n, (elevation, _count) in enumerate(wanted, start=1):
        if elevation is None:
            continue
        lo, hi = tilt.min_elevation_deg, tilt.max_elevation_deg
        if not lo - 1e-9 <= elevation <= hi + 1e-9:
            raise BadRequest(
                f"Ring {n} asks for an elevation of {elevation:g}°, but this rig's camera "
                f"tilts from {lo:g}° to {hi:g}°. Choose elevations in that range.",
                code="invalid_rings")
    path = ScanPath.build(wanted, turn_over=flip)
    if path.total_frames > settings.max_scan_frames:
        raise BadRequest(
            f"This scan would take {path.total_frames} frames; a scan takes at most "
            f"{settings.max_scan_frames} (max_total_frames in config/scanner.toml). Use fewer "
            "frames or rings.", code="invalid_frames")
    return path


def require_operator(path: ScanPath, settings: Settings, *, source: str,
                     browser: bool) -> None:
    """A guided scan stops between rings until someone continues it: refuse one that nobody
    could continue (no start button wired, and not started from a signed-in browser)."""
    if not path.needs_operator(settings.hal.tilt.is_motorised):
        return
    if source in ("web", "button") or browser or settings.hal.button.pin is not None:
        return
    raise BadRequest(
        "This scan stops between rings for someone to set the camera or turn the object "
        "over, but nobody could continue it: there is no start button (hal.button.pin) and "
        "the request does not come from a signed-in browser. Start it from the web page, "
        "wire a button, or fit a motorised tilt ([hal.tilt]).", code="guided_scan_unattended")


def ring_progress(path_json: str | None, frames_planned: int, frames_captured: int
                  ) -> dict[str, Any]:
    """Which ring the scan is on, for the Scan object: rings count and the current one."""
    path = ScanPath.from_json(path_json, frames_planned)
    index = min(frames_captured, max(path.total_frames - 1, 0))
    ring = path.frame(index).ring if path.total_frames else path.rings[0]
    return {"rings_planned": len(path.rings), "current_ring": ring.index,
            "current_pass": ring.scan_pass, "current_elevation": ring.elevation_deg}
