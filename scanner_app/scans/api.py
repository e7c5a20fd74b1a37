"""Scans API (CONTRACT "HTTP API"): start, look at, pause, resume and cancel scans.

Every answer carries {"scan": Scan} with its progress (frames, percent, angle, ETA)."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request

from scanner_app.models import Scan
from scanner_app.platform.errors import BadRequest
from scanner_app.platform.web.json_body import json_object, optional_id
from scanner_app.scans import service as service
from scanner_app.scans.dataset import dataset_response

bp = Blueprint("api_scans", __name__, url_prefix="/api/v1/scans")


def _answer(scan: Scan, status: int = 200) -> tuple[Response, int]:
    return jsonify({"scan": service.scan_json(scan)}), status


@bp.post("")
def start_scan() -> tuple[Response, int]:
    body = json_object()
    unknown = sorted(set(body) - {"session_id", "profile", "frames", "rings", "turn_over"})
    if unknown:
        named = ", ".join(f"'{field}'" for field in unknown)
        them = "it" if len(unknown) == 1 else "them"
        raise BadRequest(f"A scan does not take {named}; leave {them} out. A scan takes "
                         "'session_id', 'profile', 'frames' or 'rings', and 'turn_over', "
                         "all optional.",
                         code="invalid_field")
    profile = body.get("profile")
    if profile is not None and not isinstance(profile, str):
        raise BadRequest("'profile' must be the name of a scan profile, e.g. \"quick\".",
                         code="invalid_profile")
    # Signed in with a browser (not an API key): that person can continue a guided scan.
    browser = g.get("api_key") is None and g.get("user") is not None
    scan = service.start_scan(optional_id(body, "session_id"), profile=profile,
                              frames=body.get("frames"), source="api", rings=body.get("rings"),
                              turn_over=body.get("turn_over"), browser=browser)
    return _answer(scan, 202)


@bp.get("")
def list_scans() -> Response:
    """?session_id=N: that session's scans, newest first; always the active scan too."""
    raw = request.args.get("session_id")
    scans = []
    if raw is not None:
        if not raw.isdigit():
            raise BadRequest("'session_id' must be a session id (a whole number).",
                             code="invalid_id")
        scans = service.list_scans(int(raw))
    active = service.active_scan()
    return jsonify({"scans": [service.scan_json(s) for s in scans],
                    "active": service.scan_json(active) if active else None})


@bp.get("/<int:scan_id>")
def get_scan(scan_id: int) -> tuple[Response, int]:
    return _answer(service.get_scan(scan_id))


@bp.get("/<int:scan_id>/dataset.zip")
def dataset(scan_id: int) -> Response:
    """Download a scan as a photogrammetry data set.
    ---
    get:
      tags: [scans]
      summary: The scan's frames, masks and known poses as a data set
      description: images/, masks/ (<image>.png, 255 = object), a COLMAP text model
        (sparse/0/cameras.txt, images.txt, empty points3D.txt) with the poses the station
        knows, transforms.json (nerfstudio / instant-ngp) and a README saying whether the
        poses are calibrated or nominal. Streamed; Content-Length is its exact size.
      responses:
        200:
          description: A ZIP archive.
          headers:
            Content-Length: {schema: {type: integer}}
          content:
            application/zip: {schema: {type: string, format: binary}}
        401: {$ref: "#/components/responses/Unauthorized"}
        404: {$ref: "#/components/responses/NotFound"}
    """
    return dataset_response(service.get_scan(scan_id))


@bp.post("/<int:scan_id>/pause")
def pause_scan(scan_id: int) -> tuple[Response, int]:
    return _answer(service.pause_scan(scan_id), 202)


@bp.post("/<int:scan_id>/resume")
def resume_scan(scan_id: int) -> tuple[Response, int]:
    return _answer(service.resume_scan(scan_id), 202)


@bp.post("/<int:scan_id>/cancel")
def cancel_scan(scan_id: int) -> tuple[Response, int]:
    return _answer(service.cancel_scan(scan_id), 202)
