"""GET /api/v1/sessions/<id>/captures: a session's images, oldest first, a page at a time."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from scanner_app.captures.service import PAGE_SIZE, list_captures
from scanner_app.platform.errors import BadRequest
from scanner_app.platform.web.openapi import DATE_TIME, document_schemas, nullable, obj, ref
from scanner_app.platform.web.paging import requested_page

bp = Blueprint("api_captures", __name__, url_prefix="/api/v1/sessions/<int:session_id>")

_INT_OR_NULL = nullable({"type": "integer"})
_NUMBER_OR_NULL = nullable({"type": "number"})
document_schemas(bp, {
    "Capture": obj({
        "id": {"type": "integer"},
        "session_id": {"type": "integer"},
        "scan_id": _INT_OR_NULL,
        "upload_id": _INT_OR_NULL,
        "path": {"type": "string", "description": "Relative to the session directory."},
        "ring": _INT_OR_NULL,
        "elevation_deg": _NUMBER_OR_NULL,
        "pass": {**_INT_OR_NULL, "description": "1, or 2 after the object was turned over."},
        "angle_deg": _NUMBER_OR_NULL,
        "valid": {"type": "boolean"},
        "reason": {"type": ["string", "null"],
                   "description": "Why it is not a valid image (one sentence)."},
        "width": _INT_OR_NULL,
        "height": _INT_OR_NULL,
        "taken_at": nullable(DATE_TIME),
    }, required=["id", "session_id", "scan_id", "upload_id", "path", "angle_deg", "valid",
                 "reason", "width", "height", "taken_at"]),
    "CaptureList": obj({
        "captures": {"type": "array", "items": ref("Capture")},
        "page": {"type": "integer", "minimum": 1}, "pages": {"type": "integer", "minimum": 1},
        "per_page": {"type": "integer", "minimum": 1},
    }),
})


@bp.get("/captures")
def list_of_session(session_id: int) -> Response:
    """A session's images.
    ---
    get:
      tags: [captures]
      summary: A session's images (scan frames, uploads, extracted), oldest first
      parameters:
        - {in: query, name: valid, required: false, schema: {type: string, enum: ["true", "false"]}}
        - page
        - in: query
          name: per_page
          required: false
          schema: {type: integer, minimum: 1, maximum: 200, default: 100}
      responses:
        200:
          description: A page of captures.
          content: {application/json: {schema: CaptureList}}
        400: {$ref: "#/components/responses/BadRequest"}
        401: {$ref: "#/components/responses/Unauthorized"}
        404: {$ref: "#/components/responses/NotFound"}
    """
    valid_arg = request.args.get("valid")
    if valid_arg not in (None, "true", "false"):
        raise BadRequest("'valid' must be true or false.")
    page, per_page = requested_page(default_per_page=PAGE_SIZE)
    valid = None if valid_arg is None else valid_arg == "true"
    captures, page, pages = list_captures(session_id, valid=valid, page=page, per_page=per_page)
    return jsonify({"captures": [c.to_dict() for c in captures], "page": page, "pages": pages,
                    "per_page": per_page})
