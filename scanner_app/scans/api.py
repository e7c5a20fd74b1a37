"""Scans API (CONTRACT "HTTP API"): start, list, look at, pause, resume, cancel and download
scans. A single scan is answered as {"scan": Scan} with its progress (frames, percent, angle,
ETA)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import BinaryIO

from flask import Blueprint, Response, g, jsonify, request
from sqlalchemy import func, select

from scanner_app.models import Scan, ScanStatus
from scanner_app.platform.errors import BadRequest
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import current_storage
from scanner_app.platform.web.converters import parse_id
from scanner_app.platform.web.json_body import json_object, optional_id
from scanner_app.platform.web.openapi import DATE_TIME, document_schemas, nullable, obj, ref
from scanner_app.platform.web.paging import page_of, requested_page
from scanner_app.platform.zips import scan_zip, zip_response
from scanner_app.scans import service as service
from scanner_app.sessions.service import get_session

bp = Blueprint("api_scans", __name__, url_prefix="/api/v1/scans")

_NUMBER = {"type": "number"}
document_schemas(bp, {
    "Scan": obj({
        "id": {"type": "integer"},
        "session_id": {"type": "integer"},
        "status": {"type": "string", "enum": [s.value for s in ScanStatus]},
        "profile": {"type": "string"},
        "frames_planned": {"type": "integer", "minimum": 0},
        "frames_captured": {"type": "integer", "minimum": 0},
        "percent": {**_NUMBER, "minimum": 0},
        "eta_seconds": {**nullable({"type": "integer"}), "description": "Null while unknown."},
        "current_angle": nullable(_NUMBER),
        "message": {"type": ["string", "null"],
                    "description": "What the person at the rig should do (guided rings)."},
        "control": {"type": ["string", "null"],
                    "description": "A pause or cancel asked for and not yet carried out."},
        "error": {"type": ["string", "null"], "description": "Why it failed or stopped."},
        "source": {"type": "string", "enum": list(service.SOURCES)},
        "rings_planned": {"type": "integer", "minimum": 1},
        "current_ring": {**nullable({"type": "integer"}), "description": "From 0."},
        "current_pass": nullable({"type": "integer"}),
        "current_elevation": {**nullable(_NUMBER), "description": "Degrees."},
        "created_at": DATE_TIME,
        "started_at": nullable(DATE_TIME),
        "finished_at": nullable(DATE_TIME),
    }, required=["id", "session_id", "status", "profile", "frames_planned", "frames_captured",
                 "percent", "eta_seconds", "current_angle", "error", "source", "created_at",
                 "started_at", "finished_at"]),
    "ScanAnswer": obj({"scan": ref("Scan")}),
    "ScanList": obj({
        "scans": {"type": "array", "items": ref("Scan")},
        "active": {**nullable(ref("Scan")),
                   "description": "The scan queued, running or paused now, in any session."},
        "page": {"type": "integer", "minimum": 1}, "pages": {"type": "integer", "minimum": 1},
        "per_page": {"type": "integer", "minimum": 1}, "total": {"type": "integer", "minimum": 0},
    }),
})


def _answer(scan: Scan, status: int = 200) -> tuple[Response, int]:
    return jsonify({"scan": service.scan_json(scan)}), status


@bp.post("")
def start_scan() -> tuple[Response, int]:
    """Start a scan.
    ---
    post:
      tags: [scans]
      summary: Queue a scan of the current (or the given) session
      requestBody:
        required: false
        content:
          application/json:
            schema:
              type: object
              additionalProperties: false
              properties:
                session_id: {type: [integer, "null"], minimum: 1}
                profile: {type: string, description: A profile name from config/scanner.toml}
                frames: {type: integer, minimum: 1, maximum: 720}
                rings:
                  type: array
                  minItems: 1
                  description: Camera elevations and frames around one turn at each; instead
                    of frames. Outside the tilt's limits, or over the configured total, 400.
                  items:
                    type: object
                    additionalProperties: false
                    required: [elevation_deg, frames]
                    properties:
                      elevation_deg: {type: number}
                      frames: {type: integer, minimum: 1}
                turn_over:
                  type: boolean
                  description: After the rings, the same rings again (pass 2) once the
                    object was turned over.
      responses:
        202:
          description: The scan, queued.
          content: {application/json: {schema: ScanAnswer}}
        400: {$ref: "#/components/responses/BadRequest"}
        401: {$ref: "#/components/responses/Unauthorized"}
        404: {$ref: "#/components/responses/NotFound"}
        409: {$ref: "#/components/responses/Conflict"}
        503: {$ref: "#/components/responses/Unavailable"}
        507: {$ref: "#/components/responses/InsufficientStorage"}
    """
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
    """List scans.
    ---
    get:
      tags: [scans]
      summary: Scans of every session (or of one), newest first, a page at a time
      parameters:
        - {in: query, name: session_id, required: false, description: Only this session's,
           schema: {type: integer, minimum: 1}}
        - page
        - per_page
      responses:
        200:
          description: A page of scans, and the active scan.
          content: {application/json: {schema: ScanList}}
        400: {$ref: "#/components/responses/BadRequest"}
        401: {$ref: "#/components/responses/Unauthorized"}
        404: {$ref: "#/components/responses/NotFound"}
    """
    page, per_page = requested_page()
    query = select(Scan)
    raw = request.args.get("session_id")
    if raw is not None:
        session_id = parse_id(raw, maximum=None)
        if session_id is None:
            raise BadRequest("'session_id' must be a session id (a whole number).",
                             code="invalid_id")
        get_session(session_id)  # 404 for a session that does not exist
        query = query.where(Scan.session_id == session_id)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    shown = page_of(total, page, per_page)
    scans = db.session.scalars(query.order_by(Scan.created_at.desc(), Scan.id.desc())
                               .offset(shown.offset).limit(per_page)).all()
    active = service.active_scan()
    return jsonify({"scans": [service.scan_json(s) for s in scans],
                    "active": service.scan_json(active) if active else None,
                    **shown.fields()})


@bp.get("/<int:scan_id>")
def get_scan(scan_id: int) -> tuple[Response, int]:
    """One scan.
    ---
    get:
      tags: [scans]
      summary: One scan with its progress
      responses:
        200:
          description: The scan.
          content: {application/json: {schema: ScanAnswer}}
        401: {$ref: "#/components/responses/Unauthorized"}
        404: {$ref: "#/components/responses/NotFound"}
    """
    return _answer(service.get_scan(scan_id))


@bp.get("/<int:scan_id>/export.zip")
def export_scan(scan_id: int) -> Response:
    """Download a scan as a ZIP.
    ---
    get:
      tags: [scans]
      summary: The scan's frames and metadata as a ZIP
      description: The ZIP written when the scan completed (exports/scan-<id>.zip), or, before
        that, its frames so far, streamed. Content-Length is the exact size either way.
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
    scan = service.get_scan(scan_id)
    filename = f"scan-{scan.id}.zip"
    written = current_storage().scan_export_path(scan.session_id, scan.id)
    try:
        handle = open(written, "rb")  # noqa: SIM115 - the response closes it
    except FileNotFoundError:
        return zip_response(scan_zip(scan.session_id, scan.id), filename)
    # Opened first, sized after: an atomic rewrite meanwhile cannot make the length lie.
    size = os.fstat(handle.fileno()).st_size
    return Response(_chunks(handle), mimetype="application/zip", direct_passthrough=True,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Content-Length": str(size), "Cache-Control": "no-store"})


def _chunks(handle: BinaryIO, size: int = 256 * 1024) -> Iterator[bytes]:
    with handle:
        while data := handle.read(size):
            yield data


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
    from scanner_app.scans.dataset import dataset_response  # numpy, OpenCV: only here

    return dataset_response(service.get_scan(scan_id))


@bp.post("/<int:scan_id>/pause")
def pause_scan(scan_id: int) -> tuple[Response, int]:
    """Pause a scan.
    ---
    post:
      tags: [scans]
      summary: Pause a queued or running scan between frames
      responses:
        202:
          description: The scan, pausing.
          content: {application/json: {schema: ScanAnswer}}
        401: {$ref: "#/components/responses/Unauthorized"}
        404: {$ref: "#/components/responses/NotFound"}
        409: {$ref: "#/components/responses/Conflict"}
    """
    return _answer(service.pause_scan(scan_id), 202)


@bp.post("/<int:scan_id>/resume")
def resume_scan(scan_id: int) -> tuple[Response, int]:
    """Resume a scan.
    ---
    post:
      tags: [scans]
      summary: Resume a paused scan, or continue an interrupted one from its last frame
      responses:
        202:
          description: The scan, queued again.
          content: {application/json: {schema: ScanAnswer}}
        401: {$ref: "#/components/responses/Unauthorized"}
        404: {$ref: "#/components/responses/NotFound"}
        409: {$ref: "#/components/responses/Conflict"}
        503: {$ref: "#/components/responses/Unavailable"}
    """
    return _answer(service.resume_scan(scan_id), 202)


@bp.post("/<int:scan_id>/cancel")
def cancel_scan(scan_id: int) -> tuple[Response, int]:
    """Cancel a scan.
    ---
    post:
      tags: [scans]
      summary: Cancel a scan; frames taken so far are kept
      responses:
        202:
          description: The scan, cancelled or cancelling.
          content: {application/json: {schema: ScanAnswer}}
        401: {$ref: "#/components/responses/Unauthorized"}
        404: {$ref: "#/components/responses/NotFound"}
        409: {$ref: "#/components/responses/Conflict"}
    """
    return _answer(service.cancel_scan(scan_id), 202)
