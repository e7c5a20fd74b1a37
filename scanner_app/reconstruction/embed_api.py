"""The web-embed export in the API (registered inside reconstruction/api.py's blueprint):
make a scan's web-embed.zip and download it (reconstruction/web_embed.py)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, send_file, url_for

from scanner_app.platform.web.json_body import json_object
from scanner_app.platform.web.openapi import document_schemas, obj, ref
from scanner_app.reconstruction import web_embed

bp = Blueprint("embed", __name__)

document_schemas(bp, {
    "WebEmbed": obj({
        "url": {"type": "string", "description": "Where to download the ZIP."},
        "bytes": {"type": "integer", "minimum": 0},
        "frames": {"type": "integer", "minimum": 0, "description": "Frames in the spin."},
        "rows": {"type": "integer", "minimum": 0, "description": "Rings (rows) of the spin."},
        "model": {"type": "boolean",
                  "description": "Whether model.glb (a completed reconstruction) is in it."},
    }, required=["url", "bytes", "frames", "rows", "model"]),
    "WebEmbedAnswer": obj({"web_embed": ref("WebEmbed")}),
})


@bp.post("/scans/<int:scan_id>/web-embed")
def make(scan_id: int) -> tuple[Response, int]:
    """Make (or remake) a scan's web embed.
    ---
    post:
      tags: [reconstructions]
      summary: Write the scan's web-embed.zip (spin of resized frames, and the model once built)
      description: A self-contained index.html that loads nothing from other sites, with
        the frames as a drag-to-turn spin (one row per ring) and, when a reconstruction of
        the scan has completed, the model in model-viewer; kept in the scan's folder under
        the session's exports/.
      requestBody:
        required: false
        content:
          application/json:
            schema: {type: object, additionalProperties: false}
      responses:
        201:
          description: The web embed, written.
          content: {application/json: {schema: WebEmbedAnswer}}
        400: {$ref: "#/components/responses/BadRequest"}
        401: {$ref: "#/components/responses/Unauthorized"}
        404: {$ref: "#/components/responses/NotFound"}
        409: {$ref: "#/components/responses/Conflict"}
    """
    json_object()
    facts = web_embed.build_web_embed(scan_id)
    url = url_for("api_reconstruction.embed.download", scan_id=scan_id)
    return jsonify({"web_embed": {"url": url, **facts.to_dict()}}), 201


@bp.get("/scans/<int:scan_id>/web-embed.zip")
def download(scan_id: int) -> Response:
    """Download a scan's web embed.
    ---
    get:
      tags: [reconstructions]
      summary: The scan's web-embed.zip (made now when there is none, or the model changed)
      responses:
        200:
          description: The ZIP.
          content:
            application/zip: {schema: {type: string, format: binary}}
        401: {$ref: "#/components/responses/Unauthorized"}
        404: {$ref: "#/components/responses/NotFound"}
        409: {$ref: "#/components/responses/Conflict"}
    """
    path = web_embed.existing_or_new(scan_id)
    return send_file(path, mimetype="application/zip", as_attachment=True,
                     download_name=f"scan-{scan_id}-web-embed.zip", max_age=0)
