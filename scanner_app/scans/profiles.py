"""Scan profiles: config/scanner.toml's defaults with the settings page's edits on top.

A profile row in the database (models/profile.py) overrides the file's profile of the same
name or adds a new one; deleting it ("reset to default") brings the file's back. The default
profile chosen on the settings page is a station setting. A scan keeps a copy of the profile
it started with (Scan.profile_snapshot), so editing a profile never changes a scan already
under way, nor one that is resumed later.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from scanner_app.config import ScanProfile, Settings, current_settings
from scanner_app.models import ProfileRow, Scan, StationSetting
from scanner_app.platform.errors import BadRequest, NotFound
from scanner_app.platform.extensions import db
from scanner_app.scans.path import plan_path

DEFAULT_PROFILE_KEY = "default_profile"
RESERVED_NAME = "default"  # PUT /api/v1/profiles/default chooses the default profile
# A one-frame snapshot from the rig page is a scan of this profile: the default profile's
# camera settings, one frame. It is never offered, and no profile may take its name.
SNAPSHOT_PROFILE = "snapshot"
NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _-]{0,59}$")
FIELDS = ("frames", "settle_seconds", "resolution", "jpeg_quality", "rings", "turn_over",
          "auto_reconstruct")
MAX_SETTLE_SECONDS = 60.0
MAX_SIDE = 16384  # pixels; larger is a typo (the largest Pi sensor is 9152 wide)


# --- reading ---------------------------------------------------------------------------

def _from_row(row: ProfileRow) -> ScanProfile:
    return ScanProfile(name=row.name, frames=row.frames, settle_seconds=row.settle_seconds,
                       resolution=(row.width, row.height), jpeg_quality=row.jpeg_quality,
                       rings=row.ring_pairs(), turn_over=row.turn_over,
                       auto_reconstruct=row.auto_reconstruct)


def _rows() -> dict[str, ProfileRow]:
    return {row.name: row for row in db.session.scalars(select(ProfileRow))}


def effective_profiles(settings: Settings | None = None) -> dict[str, ScanProfile]:
    """Every profile a scan can use, by name: the files' with the database's on top."""
    settings = settings or current_settings()
    profiles = dict(settings.profiles)
    profiles.update({name: _from_row(row) for name, row in _rows().items()})
    return dict(sorted(profiles.items()))


def default_profile_name(settings: Settings | None = None,
                         profiles: dict[str, ScanProfile] | None = None) -> str:
    """The profile chosen on the settings page, else [scans] default_profile of the files."""
    settings = settings or current_settings()
    profiles = effective_profiles(settings) if profiles is None else profiles
    chosen = db.session.get(StationSetting, DEFAULT_PROFILE_KEY)
    if chosen is not None and chosen.value in profiles:
        return chosen.value
    return settings.default_profile


def profile_for(name: str | None, settings: Settings | None = None) -> ScanProfile:
    """The named profile (default profile for None); BadRequest naming the choices."""
    settings = settings or current_settings()
    profiles = effective_profiles(settings)
    name = default_profile_name(settings, profiles) if name is None else name
    if not isinstance(name, str) or name not in profiles:
        choices = ", ".join(sorted(profiles)) or "(none configured)"
        raise BadRequest(
            f"There is no scan profile {name!r}. Choose one of: {choices}.",
            code="invalid_profile",
        )
    return profiles[name]


def snapshot_profile(settings: Settings | None = None) -> ScanProfile:
    """What a snapshot is taken with: the default profile's camera, one frame, nothing after."""
    return dataclasses.replace(profile_for(None, settings), name=SNAPSHOT_PROFILE, frames=1,
                               rings=(), turn_over=False, auto_reconstruct=False)


def profile_snapshot(profile: ScanProfile) -> str:
    """The profile as a scan keeps it (JSON), whatever later happens to the profile."""
    return json.dumps(dataclasses.asdict(profile))


def _from_snapshot(text: str) -> ScanProfile | None:
    try:
        data = json.loads(text)
        data["resolution"] = tuple(data["resolution"])
        data["rings"] = tuple((float(e), int(n)) for e, n in data.get("rings", ()))
        known = {f.name for f in dataclasses.fields(ScanProfile)}
        return ScanProfile(**{k: v for k, v in data.items() if k in known})
    except (ValueError, TypeError, KeyError):
        return None


def job_profile(scan_or_name: Scan | str, settings: Settings) -> ScanProfile:
    """For a job: the profile the scan started with (its snapshot); for a scan from before
    snapshots, or a bare name, the profile of that name now, or the default profile, or
    built-in defaults if neither exists any more."""
    if isinstance(scan_or_name, Scan):
        if scan_or_name.profile_snapshot:
            kept = _from_snapshot(scan_or_name.profile_snapshot)
            if kept is not None:
                return kept
        name = scan_or_name.profile
    else:
        name = scan_or_name
    profiles = effective_profiles(settings)
    if name in profiles:
        return profiles[name]
    default = default_profile_name(settings, profiles)
    if default in profiles:
        return profiles[default]
    return ScanProfile(name, 36, 0.3, (2028, 1520), 92)


def _frames_per_scan(profile: ScanProfile, settings: Settings) -> int | None:
    """All rings, both passes; None when this rig cannot take the profile as it stands (a
    file's ring beyond the tilt's limits: a scan of it is refused with the reason)."""
    try:
        return plan_path(settings, profile).total_frames
    except BadRequest:
        return None


def profile_json(profile: ScanProfile, settings: Settings | None = None,
                 default: str | None = None, customised: set[str] | None = None) -> dict:
    """The Profile object of the API and the settings page."""
    settings = settings or current_settings()
    default = default_profile_name(settings) if default is None else default
    customised = set(_rows()) if customised is None else customised
    return {
        "name": profile.name,
        "frames": profile.frames,
        "settle_seconds": profile.settle_seconds,
        "resolution": list(profile.resolution),
        "jpeg_quality": profile.jpeg_quality,
        "rings": [{"elevation_deg": e, "frames": n} for e, n in profile.rings],
        "turn_over": profile.turn_over,
        "auto_reconstruct": profile.auto_reconstruct,
        "frames_per_scan": _frames_per_scan(profile, settings),
        "is_default": profile.name == default,
        "in_config": profile.name in settings.profiles,
        "customised": profile.name in customised,
    }


def profiles_json(settings: Settings | None = None) -> list[dict]:
    settings = settings or current_settings()
    profiles = effective_profiles(settings)
    default = default_profile_name(settings, profiles)
    customised = set(_rows())
    return [profile_json(p, settings, default, customised) for p in profiles.values()]


# --- validating ------------------------------------------------------------------------

def _bad(message: str) -> BadRequest:
    return BadRequest(message, code="invalid_profile")


def _whole(body: dict, key: str, label: str, lo: int, hi: int) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _bad(f"{label} must be a whole number from {lo} to {hi}, not {value!r}.")
    return value


def _flag(body: dict, key: str, label: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise _bad(f"{label} must be true or false, not {value!r}.")
    return value


def check_profile_name(name: Any) -> str:
    if (not isinstance(name, str) or not NAME_RULE.match(name) or name != name.strip()
            or name.lower() in (RESERVED_NAME, SNAPSHOT_PROFILE)):
        raise _bad("A profile name is 1 to 60 letters, digits, spaces, '-' or '_', starting "
                   "with a letter or digit, other than 'default' or 'snapshot' (e.g. "
                   f"'small-objects'), not {name!r}.")
    return name


def validate_profile(name: Any, body: Any, settings: Settings | None = None) -> ScanProfile:
    """A profile from a request body, checked with the rules of config/scanner.toml and of a
    scan on this rig (rings within the tilt's limits, at most [scans] max_total_frames)."""
    settings = settings or current_settings()
    name = check_profile_name(name)
    if not isinstance(body, dict):
        raise _bad("Send the profile as a JSON object with " + ", ".join(FIELDS) + ".")
    if "name" in body and body["name"] != name:
        raise _bad(f"The body names the profile {body['name']!r} but the address names "
                   f"{name!r}; leave 'name' out, or make them the same.")
    unknown = sorted(set(body) - set(FIELDS) - {"name"})
    if unknown:
        raise _bad(f"A profile has no field {', '.join(map(repr, unknown))}; its fields are "
                   + ", ".join(FIELDS) + ".")
    most = settings.max_scan_frames
    frames = _whole(body, "frames", "Frames", 1, most)
    settle = body.get("settle_seconds")
    if (isinstance(settle, bool) or not isinstance(settle, (int, float))
            or not math.isfinite(settle) or not 0 <= settle <= MAX_SETTLE_SECONDS):
        raise _bad(f"Settle time must be a number of seconds from 0 to "
                   f"{MAX_SETTLE_SECONDS:g}, not {settle!r}.")
    resolution = body.get("resolution")
    if (not isinstance(resolution, (list, tuple)) or len(resolution) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or not 16 <= v <= MAX_SIDE
                   for v in resolution)):
        raise _bad(f"Resolution must be [width, height] in pixels, each from 16 to {MAX_SIDE} "
                   f"(e.g. [2028, 1520]), not {resolution!r}.")
    quality = _whole(body, "jpeg_quality", "JPEG quality", 1, 100)
    turn_over = _flag(body, "turn_over", "Turn over")
    auto = _flag(body, "auto_reconstruct", "Auto-reconstruct")
    rings = body.get("rings") or []
    profile = ScanProfile(name=name, frames=frames, settle_seconds=float(settle),
                          resolution=(resolution[0], resolution[1]), jpeg_quality=quality,
                          turn_over=turn_over, auto_reconstruct=auto)
    # The scan's own checks: ring shape, the tilt's limits, max_total_frames.
    path = plan_path(settings, profile, rings=rings or None)
    if not rings:
        return profile
    pairs = tuple((float(r.elevation_deg or 0.0), r.frames) for r in path.rings
                  if r.scan_pass == 1)
    return dataclasses.replace(profile, rings=pairs)


# --- writing ---------------------------------------------------------------------------

def _upsert(model: type, key: str, **values: Any) -> None:
    """Insert or update one row by primary key and commit. Two requests creating the same
    row at once: the loser's insert fails on the key, and it updates the winner's row instead
    (the later write wins, as with any PUT)."""
    for attempt in (1, 2):
        row = db.session.get(model, key) or model(**{model.__mapper__.primary_key[0].key: key})
        for field, value in values.items():
            setattr(row, field, value)
        db.session.add(row)
        try:
            db.session.commit()
            return
        except IntegrityError:
            db.session.rollback()
            if attempt == 2:
                raise


def save_profile(name: Any, body: Any) -> ScanProfile:
    """Create or replace the database's profile `name` (overriding the file's)."""
    profile = validate_profile(name, body)
    _upsert(ProfileRow, profile.name, frames=profile.frames,
            settle_seconds=profile.settle_seconds, width=profile.resolution[0],
            height=profile.resolution[1], jpeg_quality=profile.jpeg_quality,
            rings=json.dumps([{"elevation_deg": e, "frames": n} for e, n in profile.rings]),
            turn_over=profile.turn_over, auto_reconstruct=profile.auto_reconstruct)
    return profile


def reset_profile(name: str) -> ScanProfile | None:
    """Delete the database's profile `name`: the file's comes back (returned), or, for a
    profile only the database had, it is gone (None)."""
    settings = current_settings()
    row = db.session.get(ProfileRow, name)
    if row is None:
        if name in settings.profiles:
            raise NotFound(f"The profile {name!r} has no changes to reset; it is already as "
                           "config/scanner.toml defines it.", code="not_customised")
        raise NotFound(f"There is no scan profile {name!r}.")
    db.session.delete(row)
    db.session.commit()
    return settings.profiles.get(name)


def set_default_profile(name: Any) -> str:
    """Choose the profile a scan uses when none is named (the button, the API)."""
    profiles = effective_profiles()
    if not isinstance(name, str) or name not in profiles:
        raise _bad(f"There is no scan profile {name!r} to make the default. Choose one of: "
                   + ", ".join(sorted(profiles)) + ".")
    _upsert(StationSetting, DEFAULT_PROFILE_KEY, value=name)
    return name
