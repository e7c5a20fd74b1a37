"""The uploads part of the JSON API (CONTRACT "HTTP API"). A single upload is answered as
{"upload": Upload}."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from scanner_app.models import UploadStatus
from scanner_app.platform.web.openapi import DATE_TIME, document_schemas, nullable, obj, ref
from scanner_app.uploads import service as service

bp = Blueprint("api_uploads", __name__, url_prefix="/api/v1/uploads")

_TEXT_OR_NULL = {"type": ["string", "null"]}
document_schemas(bp, {
    "Upload": obj({
        "id": {"type": "integer"},
        "session_id": {"type": "integer"},
        "filename": {"type": "string", "description": "The name it was sent with."},
        "size": {"type": "integer", "minimum": 0},
        "sha256": _TEXT_OR_NULL,
        "status": {"type": "string", "enum": [s.value for s in UploadStatus]},
        "captures_count": {"type": "integer", "minimum": 0},
        "valid_count": {"type": "integer", "minimum": 0},
        "invalid_count": {"type": "integer", "minimum": 0},
        "duplicate_of": {**nullable({"type": "integer"}),
                         "description": "An earlier upload of the same bytes to the session."},
        "error": {**_TEXT_OR_NULL, "description": "Why it failed, or why its file is not a "
                                                  "valid image (one sentence)."},
        "note": {**_TEXT_OR_NULL, "description": "Anything else worth knowing."},
        "created_at": DATE_TIME,
    }),
    "UploadAnswer": obj({"upload": ref("Upload")}),
    "UploadBatch": obj({
        "session_id": {"type": "integer"},
        "uploads": {"type": "array", "items": ref("Upload")},
    }, description="One Upload per file sent."),
})


@bp.post("")
def create_uploads() -> tuple[Response, int]:
    """Upload files.
    ---
    post:
      tags: [uploads]
      summary: Upload images or ZIP archives into the current (or the given) session
      requestBody:
        required: true
        content:
          multipart/form-data:
            schema:
              type: object
              required: [files]
              properties:
                files: {type: array, items: {type: string, format: binary}}
                session_id: {type: integer, minimum: 1}
      responses:
        201:
          description: One Upload per file; processing goes on in the background.
          content: {application/json: {schema: UploadBatch}}
        400: {$ref: "#/components/responses/BadRequest"}
        401: {$ref: "#/components/responses/Unauthorized"}
        404: {$ref: "#/components/responses/NotFound"}
        413: {$ref: "#/components/responses/TooLarge"}
        503: {$ref: "#/components/responses/Unavailable"}
        507: {$ref: "#/components/responses/InsufficientStorage"}
    """
    session_id, uploads = service.accept_upload_request(request)
    return jsonify({"session_id": session_id, "uploads": [u.to_dict() for u in uploads]}), 201


@bp.put("")
def put_upload() -> tuple[Response, int]:
    """Upload one file as the raw request body.
    ---
    put:
      tags: [uploads]
      summary: Upload one file as the request body into the current (or the given) session
      description: >-
        The fast way to send a single large file: no form encoding, the body is the file.
        Answered like the multipart POST (one Upload in the list).
      parameters:
        - in: query
          name: filename
          required: true
          description: "The file's name, e.g. photo.jpg (one name, not a path)."
          schema: {type: string, minLength: 1}
        - in: query
          name: session_id
          required: false
          description: The session to upload into; the current session when left out.
          schema: {type: integer, minimum: 1}
      requestBody:
        required: true
        content:
          application/octet-stream:
            schema: {type: string, format: binary}
      responses:
        201:
          description: One Upload; processing goes on in the background.
          content: {application/json: {schema: UploadBatch}}
        400: {$ref: "#/components/responses/BadRequest"}
        401: {$ref: "#/components/responses/Unauthorized"}
        404: {$ref: "#/components/responses/NotFound"}
        413: {$ref: "#/components/responses/TooLarge"}
        503: {$ref: "#/components/responses/Unavailable"}
        507: {$ref: "#/components/responses/InsufficientStorage"}
    """
    session_id, uploads = service.accept_raw_upload(request)
    return jsonify({"session_id": session_id, "uploads": [u.to_dict() for u in uploads]}), 201


@bp.get("/<int:upload_id>")
def get_upload(upload_id: int) -> Response:
    """One upload.
    ---
    get:
      tags: [uploads]
      summary: One upload, with its counts once processed
      responses:
        200:
          description: The upload.
          content: {application/json: {schema: UploadAnswer}}
        401: {$ref: "#/components/responses/Unauthorized"}
        404: {$ref: "#/components/responses/NotFound"}
    """
    return jsonify({"upload": service.get_upload(upload_id).to_dict()})
