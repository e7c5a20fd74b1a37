"""The settings page (/settings): the scan profiles, edited in the browser and stored in the
database (config/scanner.toml keeps the defaults), and the default profile. Only admins
change them; everyone signed in sees them. Every form answers htmx with the profiles section
re-rendered (templates/settings/partials/_profiles.html), a plain post with a redirect."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, request, url_for
from werkzeug.wrappers import Response

from scanner_app.config import current_settings
from scanner_app.platform.errors import BadRequest
from scanner_app.platform.web.forms import form_answer
from scanner_app.platform.web.render import render
from scanner_app.scans import service as scans
from scanner_app.station.settings_access import can_edit_settings, require_settings_editor

bp = Blueprint("settings", __name__, url_prefix="/settings")

RING_LINE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*[ ,:x×]\s*(\d+)\s*$")


def page_context(saved: str | None = None) -> dict[str, Any]:
    settings = current_settings()
    tilt = settings.hal.tilt
    return {"profiles": scans.profiles_json(), "default_profile": scans.default_profile_name(),
            "can_edit": can_edit_settings(), "saved": saved,
            "max_frames": settings.max_scan_frames,
            "tilt_range": (tilt.min_elevation_deg, tilt.max_elevation_deg)}


def _number(name: str, kind: type) -> Any:
    """A form field as a number when it is one; otherwise as typed, so the profile's check
    names the field and what it takes."""
    raw = (request.form.get(name) or "").strip()
    try:
        return kind(raw)
    except ValueError:
        return raw


def _rings() -> list[dict[str, Any]]:
    rings = []
    for n, line in enumerate((request.form.get("rings") or "").splitlines(), start=1):
        if not line.strip():
            continue
        match = RING_LINE.match(line)
        if match is None:
            raise BadRequest(f"Rings, line {n} ({line.strip()!r}): write one ring per line as "
                             "the elevation in degrees and the number of frames, e.g. '30 24'.",
                             code="invalid_profile")
        rings.append({"elevation_deg": float(match[1]), "frames": int(match[2])})
    return rings


def profile_from_form() -> dict[str, Any]:
    return {
        "frames": _number("frames", int),
        "settle_seconds": _number("settle_seconds", float),
        "resolution": [_number("width", int), _number("height", int)],
        "jpeg_quality": _number("jpeg_quality", int),
        "rings": _rings(),
        "turn_over": request.form.get("turn_over") == "1",
        "auto_reconstruct": request.form.get("auto_reconstruct") == "1",
    }


def _answer(saved: str | None = None) -> str | Response:
    return form_answer(url_for("settings.index"),
                       lambda: render("settings", "index", partial="profiles",
                                      **page_context(saved)))


@bp.get("")
def index() -> str:
    return render("settings", "index", **page_context())


@bp.post("/profiles")
def create() -> str | Response:
    require_settings_editor()
    name = (request.form.get("name") or "").strip()
    if name in scans.effective_profiles():
        raise BadRequest(f"A profile named {name!r} exists already; change it in its own "
                         "form, or choose another name.", code="profile_exists")
    saved = scans.save_profile(name, profile_from_form())
    return _answer(saved.name)


@bp.post("/profiles/<name>")
def save(name: str) -> str | Response:
    require_settings_editor()
    scans.save_profile(name, profile_from_form())
    return _answer(name)


@bp.post("/profiles/<name>/reset")
def reset(name: str) -> str | Response:
    require_settings_editor()
    scans.reset_profile(name)
    return _answer()


@bp.post("/default")
def choose_default() -> str | Response:
    require_settings_editor()
    name = scans.set_default_profile(request.form.get("name"))
    return _answer(name)
