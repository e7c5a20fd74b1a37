"""Reconstruction API (CONTRACT "HTTP API"): build a completed scan's model, follow it,
cancel it, download its outputs. Every answer carries {"reconstruction": Reconstruction}."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, send_file

from scanner_app.models import Reconstruction, ReconstructionStatus
from scanner_app.platform.errors import NotFound
from scanner_app.platform.web.json_body import json_object
from scanner_app.platform.web.openapi import DATE_TIME, document_schemas, nullable, obj, ref
from scanner_app.reconstruction import service
from scanner_app.reconstruction.embed_api import bp as embed_bp
from scanner_app.reconstruction.remote_api import bp as remote_bp

bp = Blueprint("api_reconstruction", __name__, url_prefix="/api/v1")
bp.register_blueprint(embed_bp)  # /api/v1/scans/<id>/web-embed(.zip)
bp.register_blueprint(remote_bp)  # what a processing worker on another computer calls

MIMETYPES = {".glb": "model/gltf-binary", ".ply": "application/octet-stream",
             ".json": "application/json", ".txt": "text/plain"}

document_schemas(bp, {
    "Reconstruction": obj({
        "id": {"type": "integer"},
        "scan_id": {"type": "integer"},
        "session_id": {"type": "integer"},
        "status": {"type": "string", "enum": [s.value for s in ReconstructionStatus]},
        "stage": {"type": ["string", "null"],
                  "description": "queued, features, matching, triangulation, bundle "
                                 "adjustment, visual hull, colour, writing, done."},
        "percent": {"type": "number", "minimum": 0, "maximum": 100},
        "eta_seconds": {**nullable({"type": "integer"}), "description": "Null while unknown."},
        "error": {"type": ["string", "null"],
                  "description": "Why it failed or stopped, and what to change."},
        "outputs": {"type": "object", "additionalProperties": {"type": "string"},
                    "description": "File name to download address; model.glb once completed."},
        "metrics": {"type": "object", "description": "The report: registered frames, "
                    "reprojection error, pose corrections, time per stage."},
        "created_at": DATE_TIME,
        "started_at": nullable(DATE_TIME),
        "finished_at": nullable(DATE_TIME),
    }, required=["id", "scan_id", "session_id", "status", "stage", "percent", "error",
                 "outputs", "metrics", "created_at", "finished_at"]),
    "ReconstructionAnswer": obj({"reconstruction": ref("Reconstruction")}),
})


def _answer(row: Reconstruction, status: int = 200) -> tuple[Response, int]:
    return jsonify({"reconstruction": service.reconstruction_json(row)}), status


@bp.post("/scans/<int:scan_id>/reconstruction")
def start(scan_id: int) -> tuple[Response, int]:
    """Build a scan's 3D model.
    ---
    post:
      tags: [reconstructions]
      summary: Queue a reconstruction of a completed scan on the processing queue
      requestBody:
        required: false
        content:
          application/json:
            schema: {type: object, additionalProperties: false}
      responses:
        202:
          description: The reconstruction, queued.
          content: {application/json: {schema: ReconstructionAnswer}}
        400: {$ref: "#/components/responses/BadRequest"}
        401: {$ref: "#/components/responses/Unauthorized"}
        404: {$ref: "#/components/responses/NotFound"}
        409: {$ref: "#/components/responses/Conflict"}
        503: {$ref: "#/components/responses/Unavailable"}
    """
    json_object()  # an empty object (or no body); nothing to choose yet
    return _answer(service.start_reconstruction(scan_id), 202)


@bp.get("/scans/<int:scan_id>/reconstruction")
def latest(scan_id: int) -> tuple[Response, int]:
    """A scan's newest reconstruction.
    ---
    get:
      tags: [reconstructions]
      summary: The scan's newest reconstruction (404 when it has none)
      responses:
        200:
          description: The reconstruction.
          content: {application/json: {schema: ReconstructionAnswer}}
        401: {$ref: "#/components/responses/Unauthorized"}
        404: {$ref: "#/components/responses/NotFound"}
    """
    row = service.latest_for_scan(scan_id)
    if row is None:
        raise NotFound(f"Scan {scan_id} has no model yet. POST to this address to build one.")
    return _answer(row)


@bp.get("/reconstructions/<int:reconstruction_id>")
def get(reconstruction_id: int) -> tuple[Response, int]:
    """A reconstruction.
    ---
    get:
      tags: [reconstructions]
      summary: Status, stage, percent, ETA, outputs and metrics of a reconstruction
      responses:
        200:
          description: The reconstruction.
          content: {application/json: {schema: ReconstructionAnswer}}
        401: {$ref: "#/components/responses/Unauthorized"}
        404: {$ref: "#/components/responses/NotFound"}
    """
    return _answer(service.get_reconstruction(reconstruction_id))


@bp.post("/reconstructions/<int:reconstruction_id>/cancel")
def cancel(reconstruction_id: int) -> tuple[Response, int]:
    """Cancel a reconstruction.
    ---
    post:
      tags: [reconstructions]
      summary: Cancel a queued or running reconstruction (the job stops at its next check)
      responses:
        202:
          description: The reconstruction, cancelled.
          content: {application/json: {schema: ReconstructionAnswer}}
        401: {$ref: "#/components/responses/Unauthorized"}
        404: {$ref: "#/components/responses/NotFound"}
        409: {$ref: "#/components/responses/Conflict"}
    """
    return _answer(service.cancel_reconstruction(reconstruction_id), 202)


@bp.get("/reconstructions/<int:reconstruction_id>/files/<path:name>")
def output(reconstruction_id: int, name: str) -> Response:
    """Download an output of a reconstruction.
    ---
    get:
      tags: [reconstructions]
      summary: One output file (model.glb, sparse.ply, report.json, colmap/*.txt)
      description: Only the names the reconstruction lists in its outputs are served.
      responses:
        200:
          description: The file.
          content:
            model/gltf-binary: {schema: {type: string, format: binary}}
            application/json: {schema: {type: object}}
            application/octet-stream: {schema: {type: string, format: binary}}
            text/plain: {schema: {type: string}}
        401: {$ref: "#/components/responses/Unauthorized"}
        404: {$ref: "#/components/responses/NotFound"}
    """
    row = service.get_reconstruction(reconstruction_id)
    path = service.output_path(row, name)
    return send_file(path, mimetype=MIMETYPES.get(path.suffix, "application/octet-stream"),
                     download_name=f"scan-{row.scan_id}-{path.name}", max_age=0)
