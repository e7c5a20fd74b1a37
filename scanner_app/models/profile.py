"""Scan profiles edited on the settings page (issue 14), and station-wide settings.

config/scanner.toml holds the default profiles; a row here of the same name overrides the
file's profile, a row of a new name adds one, and deleting the row ("reset to default") brings
the file's profile back. scans/profiles.py is the one reader and writer.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.orm import Mapped, mapped_column

from scanner_app.platform.clock import iso, utcnow
from scanner_app.platform.extensions import db


class ProfileRow(db.Model):
    __tablename__ = "scan_profiles"

    name: Mapped[str] = mapped_column(db.String(60), primary_key=True)
    frames: Mapped[int]
    settle_seconds: Mapped[float]
    width: Mapped[int]
    height: Mapped[int]
    jpeg_quality: Mapped[int]
    # JSON list of {"elevation_deg", "frames"}; [] = one ring of `frames`.
    rings: Mapped[str] = mapped_column(db.Text, default="[]")
    turn_over: Mapped[bool] = mapped_column(default=False)
    auto_reconstruct: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def ring_pairs(self) -> tuple[tuple[float, int], ...]:
        return tuple((float(r["elevation_deg"]), int(r["frames"]))
                     for r in json.loads(self.rings or "[]"))

    def stamp(self) -> str | None:
        return iso(self.updated_at)


class StationSetting(db.Model):
    """One station-wide setting chosen in the UI, by key (e.g. "default_profile")."""

    __tablename__ = "station_settings"

    key: Mapped[str] = mapped_column(db.String(60), primary_key=True)
    value: Mapped[str] = mapped_column(db.Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
