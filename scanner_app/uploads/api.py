"""The uploads part of the JSON API (CONTRACT "HTTP API")."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from scanner_app.uploads import service as service

bp = Blueprint("api_uploads", __name__, url_prefix="/api/v1/uploads")


@bp.post("")
def create_uploads() -> tuple[Response, int]:
    session_id, uploads = service.accept_upload_request(request)
    return jsonify({"session_id": session_id, "uploads": [u.to_dict() for u in uploads]}), 201


@bp.get("/<int:upload_id>")
def get_upload(upload_id: int) -> Response:
    return jsonify(service.get_upload(upload_id).to_dict())
