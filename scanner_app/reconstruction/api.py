"""Reconstruction API (CONTRACT "HTTP API"): build a completed scan's model, follow it,
cancel it, download its outputs. Every answer carries {"reconstruction": Reconstruction}."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, send_file

from scanner_app.models import Reconstruction
from scanner_app.platform.errors import NotFound
from scanner_app.platform.web.json_body import json_object
from scanner_app.reconstruction import service

bp = Blueprint("api_reconstruction", __name__, url_prefix="/api/v1")

MIMETYPES = {".glb": "model/gltf-binary", ".ply": "application/octet-stream",
             ".json": "application/json", ".txt": "text/plain"}


def _answer(row: Reconstruction, status: int = 200) -> tuple[Response, int]:
    return jsonify({"reconstruction": service.reconstruction_json(row)}), status


@bp.post("/scans/<int:scan_id>/reconstruction")
def start(scan_id: int) -> tuple[Response, int]:
    """Queue a reconstruction of a completed scan: 202; 409 while the scan is not completed or
    one is queued or running for it; 503 when the queue is unreachable."""
    json_object()  # an empty object (or no body); nothing to choose yet
    return _answer(service.start_reconstruction(scan_id), 202)


@bp.get("/scans/<int:scan_id>/reconstruction")
def latest(scan_id: int) -> tuple[Response, int]:
    """The scan's newest reconstruction; 404 when it has none."""
    row = service.latest_for_scan(scan_id)
    if row is None:
        raise NotFound(f"Scan {scan_id} has no model yet. POST to this address to build one.")
    return _answer(row)


@bp.get("/reconstructions/<int:reconstruction_id>")
def get(reconstruction_id: int) -> tuple[Response, int]:
    return _answer(service.get_reconstruction(reconstruction_id))


@bp.post("/reconstructions/<int:reconstruction_id>/cancel")
def cancel(reconstruction_id: int) -> tuple[Response, int]:
    return _answer(service.cancel_reconstruction(reconstruction_id), 202)


@bp.get("/reconstructions/<int:reconstruction_id>/files/<path:name>")
def output(reconstruction_id: int, name: str) -> Response:
    """One output file (only names the reconstruction lists, so nothing else is served)."""
    row = service.get_reconstruction(reconstruction_id)
    path = service.output_path(row, name)
    return send_file(path, mimetype=MIMETYPES.get(path.suffix, "application/octet-stream"),
                     download_name=f"scan-{row.scan_id}-{path.name}", max_age=0)
