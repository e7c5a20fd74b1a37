"""The rig's JSON API under /api/v1/rig: its state, the manual controls (each a short job the
worker that owns the rig carries out; the answer is the rig's new state), the preview's
light, a snapshot into the current session and, on mock hardware, the virtual start button.
Every control answers 409 with a sentence while a scan or a calibration has the rig."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from scanner_app.platform.errors import BadRequest
from scanner_app.platform.web.json_body import json_object
from scanner_app.platform.web.openapi import document_schemas, nullable, obj, ref
from scanner_app.rig import channel, service
from scanner_app.rig.actions import RigAction
from scanner_app.scans import service as scans

bp = Blueprint("api_rig", __name__, url_prefix="/api/v1/rig")

_NUMBER = {"type": "number"}
document_schemas(bp, {
    "RigState": obj({
        "driver": {"type": "string"},
        "angle_deg": {**_NUMBER, "description": "The platter's angle as the driver believes it."},
        "position_known": {"type": "boolean"},
        "position_note": {"type": "string"},
        "light_on": {"type": "boolean"},
        "motor_enabled": {"type": "boolean"},
        "tilt": nullable(obj({"elevation_deg": _NUMBER, "min_elevation_deg": _NUMBER,
                              "max_elevation_deg": _NUMBER})),
        "updated_at": {"type": "string", "format": "date-time"},
    }, description="The rig as the last job that held it left it."),
    "Rig": obj({
        "state": nullable(ref("RigState")),
        "busy": nullable({"type": "string", "description":
                          "Why the rig is not free for a control (a scan or calibration)."}),
        "preview_live": {"type": "boolean"},
        "preview_light": {"type": "boolean"},
        "mock_hardware": {"type": "boolean"},
        "tilt_axis": nullable(obj({"min_elevation_deg": _NUMBER, "max_elevation_deg": _NUMBER},
                                  description="The configured tilt axis; null: none.")),
    }),
    "RigAnswer": obj({"rig": ref("Rig")}),
    "ButtonPress": obj({"pressed": {"type": "boolean"}}),
    "PreviewInfo": obj({"live": {"type": "boolean"}, "meta": nullable({"type": "object"})}),
})


def _answer(state: dict[str, Any] | None = None) -> Response:
    status = service.rig_status()
    if state is not None:
        status["state"] = state
    return jsonify({"rig": status})


@bp.get("")
def rig() -> Response:
    """The rig's state.
    ---
    get:
      tags: [rig]
      summary: The rig as the last job left it, whether it is busy, whether a preview is live
      responses:
        200: {description: The rig., content: {application/json: {schema: RigAnswer}}}
        401: {$ref: "#/components/responses/Unauthorized"}
    """
    return _answer()


@bp.post("/turn")
def turn() -> Response:
    """Turn the platter.
    ---
    post:
      tags: [rig]
      summary: Turn the platter to an angle (`to`, 0–360) or by a step (`by`, −360–360)
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              properties:
                to: {type: number, minimum: 0, maximum: 360}
                by: {type: number, minimum: -360, maximum: 360}
      responses:
        200:
          description: The rig after the turn.
          content: {application/json: {schema: RigAnswer}}
        400: {$ref: "#/components/responses/BadRequest"}
        401: {$ref: "#/components/responses/Unauthorized"}
        409: {$ref: "#/components/responses/Conflict"}
        503: {$ref: "#/components/responses/Unavailable"}
    """
    body = json_object()
    if ("to" in body) == ("by" in body):
        raise BadRequest("Send either 'to' (an angle from 0 to 360) or 'by' (a step from "
                         "-360 to 360).", code="invalid_value")
    if "to" in body:
        return _answer(service.control(RigAction.TURN_TO, body["to"]))
    return _answer(service.control(RigAction.TURN_BY, body["by"]))


@bp.post("/tilt")
def tilt() -> Response:
    """Tilt the camera arm.
    ---
    post:
      tags: [rig]
      summary: Tilt the camera to an elevation (rigs with a tilt axis)
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [to]
              properties:
                to: {type: number, minimum: -90, maximum: 90}
      responses:
        200:
          description: The rig after the tilt.
          content: {application/json: {schema: RigAnswer}}
        400: {$ref: "#/components/responses/BadRequest"}
        401: {$ref: "#/components/responses/Unauthorized"}
        409: {$ref: "#/components/responses/Conflict"}
        503: {$ref: "#/components/responses/Unavailable"}
    """
    return _answer(service.control(RigAction.TILT_TO, json_object().get("to")))


@bp.post("/home")
def home() -> Response:
    """Home the rig.
    ---
    post:
      tags: [rig]
      summary: Home the platter (and the tilt axis, where there is one)
      responses:
        200: {description: The rig after homing., content: {application/json: {schema: RigAnswer}}}
        401: {$ref: "#/components/responses/Unauthorized"}
        409: {$ref: "#/components/responses/Conflict"}
        503: {$ref: "#/components/responses/Unavailable"}
    """
    return _answer(service.control(RigAction.HOME))


@bp.post("/light")
def light() -> Response:
    """Switch the light.
    ---
    post:
      tags: [rig]
      summary: The light on or off (lit, it stays on while the preview is watched)
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: ["on"]
              properties:
                "on": {type: boolean}
      responses:
        200:
          description: The rig with the light switched.
          content: {application/json: {schema: RigAnswer}}
        400: {$ref: "#/components/responses/BadRequest"}
        401: {$ref: "#/components/responses/Unauthorized"}
        409: {$ref: "#/components/responses/Conflict"}
        503: {$ref: "#/components/responses/Unavailable"}
    """
    on = json_object().get("on")
    if not isinstance(on, bool):
        raise BadRequest("Send {\"on\": true} or {\"on\": false}.", code="invalid_value")
    return _answer(service.set_light(on))


@bp.get("/preview")
def preview() -> Response:
    """The live preview's newest frame's facts.
    ---
    get:
      tags: [rig]
      summary: Whether a preview frame is live, its exposure, angle and framing overlay
      responses:
        200: {description: The preview., content: {application/json: {schema: PreviewInfo}}}
        401: {$ref: "#/components/responses/Unauthorized"}
        503: {$ref: "#/components/responses/Unavailable"}
    """
    redis = service.watch_preview()
    meta = channel.frame_meta(redis)
    return jsonify({"live": meta is not None, "meta": meta})


@bp.post("/snapshot")
def snapshot() -> tuple[Response, int]:
    """Take one frame into the current session.
    ---
    post:
      tags: [rig]
      summary: A one-frame scan into the session new work goes to
      responses:
        202:
          description: The snapshot's scan, queued.
          content: {application/json: {schema: ScanAnswer}}
        401: {$ref: "#/components/responses/Unauthorized"}
        409: {$ref: "#/components/responses/Conflict"}
        503: {$ref: "#/components/responses/Unavailable"}
        507: {$ref: "#/components/responses/InsufficientStorage"}
    """
    scan = service.snapshot_into_session(source="api")
    return jsonify({"scan": scans.scan_json(scan)}), 202


@bp.post("/button")
def button() -> tuple[Response, int]:
    """Press the virtual start button.
    ---
    post:
      tags: [rig]
      summary: On mock hardware, press the start button (as `scanner button --press`)
      responses:
        202:
          description: The press was sent to the button daemon.
          content: {application/json: {schema: ButtonPress}}
        401: {$ref: "#/components/responses/Unauthorized"}
        409: {$ref: "#/components/responses/Conflict"}
        503: {$ref: "#/components/responses/Unavailable"}
    """
    service.press_button()
    return jsonify({"pressed": True}), 202
