"""The frames of a scan as a 360° spin: one row per ring (and pass), each row's frames in
turntable order (by angle), valid frames only. Used by the scan page's spin viewer and the
web-embed export; both show them with static/spin.js."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from scanner_app.models import Capture
from scanner_app.platform.extensions import db


@dataclass
class SpinRow:
    ring: int | None
    elevation_deg: float | None
    scan_pass: int | None
    frames: list[Capture] = field(default_factory=list)

    @property
    def label(self) -> str:
        if self.ring is None:
            return "Frames"
        words = f"Ring {self.ring + 1}"
        if self.elevation_deg is not None:
            words += f" · {self.elevation_deg:g}°"
        if self.scan_pass == 2:
            words += " · turned over"
        return words


def spin_rows(scan_id: int) -> list[SpinRow]:
    """Rows from the lowest ring up (first pass before the turned-over one); in a row, the
    frames by turntable angle (the path may take a ring in either direction)."""
    frames = db.session.scalars(select(Capture).where(
        Capture.scan_id == scan_id, Capture.valid.is_(True))).all()
    rows: dict[tuple, SpinRow] = {}
    for frame in frames:
        key = (frame.scan_pass or 1, frame.ring if frame.ring is not None else -1)
        row = rows.setdefault(key, SpinRow(frame.ring, frame.elevation_deg, frame.scan_pass))
        row.frames.append(frame)
    ordered = [rows[key] for key in sorted(rows)]
    for row in ordered:
        row.frames.sort(key=lambda c: (c.angle_deg if c.angle_deg is not None else 0.0,
                                       c.frame_index or 0, c.id))
    return ordered
