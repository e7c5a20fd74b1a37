"""The API a processing worker on another computer uses (registered inside
reconstruction/api.py's blueprint): claim a queued reconstruction, download its inputs, report
progress (the heartbeat), upload outputs, finish. Only requests with an API key (X-Api-Key)
are served: a browser login is refused, as the worker is a program holding a key."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request

from scanner_app.platform.errors import StationError
from scanner_app.platform.web.json_body import json_object
from scanner_app.platform.zips import scan_zip, zip_response
from scanner_app.reconstruction import remote_station, service

bp = Blueprint("remote", __name__)

_RESPONSES = """
        401: {$ref: "#/components/responses/Unauthorized"}
        403:
          description: A browser login, not an API key.
          content: {application/json: {schema: Error}}
        404: {$ref: "#/components/responses/NotFound"}
        409: {$ref: "#/components/responses/Conflict"}"""


@bp.before_request
def _workers_only() -> None:
    if g.get("api_key") is None:
        raise StationError("Only a processing worker holding an API key may do this; start "
                           "one with 'scanner worker --queues processing --station URL "
                           "--api-key KEY'.", code="api_key_required", status=403)


def _answer(row, status: int = 200) -> tuple[Response, int]:
    return jsonify({"reconstruction": service.reconstruction_json(row)}), status


def _doc(text: str) -> str:
    return text.replace("{responses}", _RESPONSES)


@bp.post("/reconstructions/<int:reconstruction_id>/claim")
def claim(reconstruction_id: int) -> tuple[Response, int]:
    return _answer(remote_station.claim(reconstruction_id))


@bp.get("/reconstructions/<int:reconstruction_id>/inputs.zip")
def inputs(reconstruction_id: int) -> Response:
    row = remote_station.running(reconstruction_id)
    return zip_response(scan_zip(row.session_id, row.scan_id),
                        f"reconstruction-{row.id}-inputs.zip")


@bp.post("/reconstructions/<int:reconstruction_id>/progress")
def progress(reconstruction_id: int) -> tuple[Response, int]:
    return _answer(remote_station.progress(reconstruction_id, json_object()))


@bp.put("/reconstructions/<int:reconstruction_id>/outputs/<path:name>")
def output(reconstruction_id: int, name: str) -> tuple[Response, int]:
    size = remote_station.store_output(reconstruction_id, name, request.stream)
    return jsonify({"name": name, "bytes": size}), 201


@bp.post("/reconstructions/<int:reconstruction_id>/finish")
def finish(reconstruction_id: int) -> tuple[Response, int]:
    return _answer(remote_station.finish(reconstruction_id, json_object()))


claim.__doc__ = _doc("""Claim a queued reconstruction (a remote processing worker).
    ---
    post:
      tags: [processing workers]
      summary: queued -> running for the worker that took its job from the processing queue
      responses:
        200:
          description: The reconstruction, now running.
          content: {application/json: {schema: ReconstructionAnswer}}{responses}
    """)
inputs.__doc__ = _doc("""Download a running reconstruction's inputs.
    ---
    get:
      tags: [processing workers]
      summary: The scan's frames, masks and metadata (poses, calibration) as a ZIP
      responses:
        200:
          description: The ZIP.
          content:
            application/zip: {schema: {type: string, format: binary}}{responses}
    """)
progress.__doc__ = _doc("""Report progress (also the worker's heartbeat).
    ---
    post:
      tags: [processing workers]
      summary: Stage, percent and ETA while running; 409 once it is not (stop)
      requestBody:
        required: false
        content:
          application/json:
            schema:
              type: object
              additionalProperties: false
              properties:
                stage: {type: string, minLength: 1, maxLength: 40}
                percent: {type: number, minimum: 0, maximum: 100}
                eta_seconds: {type: [integer, "null"], minimum: 0}
      responses:
        200:
          description: The reconstruction.
          content: {application/json: {schema: ReconstructionAnswer}}
        400: {$ref: "#/components/responses/BadRequest"}{responses}
    """)
output.__doc__ = _doc("""Upload one output file of a running reconstruction.
    ---
    put:
      tags: [processing workers]
      summary: The file's bytes as the body; kept aside until the worker finishes
      requestBody:
        required: true
        content:
          application/octet-stream: {schema: {type: string, format: binary}}
      responses:
        201:
          description: Stored.
          content:
            application/json:
              schema:
                type: object
                properties: {name: {type: string}, bytes: {type: integer}}
        400: {$ref: "#/components/responses/BadRequest"}
        413: {$ref: "#/components/responses/TooLarge"}{responses}
    """)
finish.__doc__ = _doc("""Finish a running reconstruction.
    ---
    post:
      tags: [processing workers]
      summary: completed (its uploaded outputs become the scan's model) or failed (with a sentence)
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [status]
              properties:
                status: {type: string, enum: [completed, failed]}
                error: {type: string}
                metrics: {type: object}
                outputs: {type: array, items: {type: string}}
      responses:
        200:
          description: The reconstruction, ended.
          content: {application/json: {schema: ReconstructionAnswer}}
        400: {$ref: "#/components/responses/BadRequest"}{responses}
    """)
