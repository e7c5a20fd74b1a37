"""The Rig page (/rig): the live preview with its framing overlay and the manual controls
(htmx buttons; plain forms work too), and the preview itself at /station/preview.mjpg (MJPEG)
and /station/preview.jpg (one frame). Login or API key required, like every page."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request, stream_with_context, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from scanner_app.platform.errors import BadRequest
from scanner_app.platform.web.forms import form_answer
from scanner_app.platform.web.render import render
from scanner_app.rig import relay, service
from scanner_app.rig.actions import RigAction

bp = Blueprint("rig", __name__)
NO_STORE = {"Cache-Control": "no-store"}


def _context(**extra: Any) -> dict[str, Any]:
    return {"rig": service.rig_status(), **extra}


def _panel(done: str | None = None) -> str:
    return render("rig", "controls", partial="state", **_context(done=done))


def _after(done: str) -> str | WerkzeugResponse:
    return form_answer(url_for("rig.index"), lambda: _panel(done))


@bp.get("/rig")
def index() -> str:
    return render("rig", "controls", **_context(done=None))


@bp.get("/rig/state")
def state() -> str:
    """The rig's state alone (what the panel polls, and what every control answers with)."""
    return _panel()


def _field(name: str) -> str:
    return (request.form.get(name) or "").strip()


@bp.post("/rig/turn")
def turn() -> str | WerkzeugResponse:
    if _field("to"):
        state = service.control(RigAction.TURN_TO, _field("to"))
    elif _field("by"):
        state = service.control(RigAction.TURN_BY, _field("by"))
    else:
        raise BadRequest("Type an angle from 0 to 360 to turn to.", code="invalid_value")
    return _after(f"The platter turned to {state['angle_deg']:g}°.")


@bp.post("/rig/tilt")
def tilt() -> str | WerkzeugResponse:
    state = service.control(RigAction.TILT_TO, _field("to"))
    elevation = (state.get("tilt") or {}).get("elevation_deg")
    return _after(f"The camera is tilted to {elevation:g}°." if elevation is not None
                  else "The camera was tilted.")


@bp.post("/rig/home")
def home() -> str | WerkzeugResponse:
    state = service.control(RigAction.HOME)
    return _after(f"The rig is home: the platter is at {state['angle_deg']:g}°.")


@bp.post("/rig/light")
def light() -> str | WerkzeugResponse:
    on = _field("on") == "1"
    service.set_light(on)
    return _after("The light is on while the preview is watched." if on
                  else "The light is off.")


@bp.post("/rig/snapshot")
def snapshot() -> str | WerkzeugResponse:
    scan = service.snapshot_into_session(source="web", browser=True)
    return _after(f"Snapshot queued as scan {scan.id} in the current session.")


@bp.post("/rig/button")
def button() -> str | WerkzeugResponse:
    service.press_button()
    return _after("The start button was pressed.")


# --- the preview ---------------------------------------------------------------------------

@bp.get("/station/preview.mjpg")
def preview_stream() -> Response:
    parts = relay.frames()
    try:
        first = next(parts)  # errors (Redis down) before the stream starts: an error answer
    except StopIteration:
        first = b""

    def body() -> Any:
        yield first
        yield from parts

    return Response(stream_with_context(body()), mimetype=relay.MIMETYPE,
                    headers={**NO_STORE, "X-Accel-Buffering": "no"})


@bp.get("/station/preview.jpg")
def preview_snapshot() -> Response:
    return Response(relay.snapshot(), mimetype="image/jpeg", headers=NO_STORE)

