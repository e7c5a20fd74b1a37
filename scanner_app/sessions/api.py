"""Sessions API (CONTRACT "HTTP API"): list, create, look at, rename, finish, delete and merge
sessions, and choose where new work goes. A single session is answered as {"session": ...}."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from scanner_app.models import ScanSession, SessionStatus
from scanner_app.platform.errors import BadRequest
from scanner_app.platform.web.json_body import json_object, optional_id
from scanner_app.platform.web.openapi import DATE_TIME, document_schemas, nullable, obj, ref
from scanner_app.platform.web.paging import requested_page
from scanner_app.platform.web.response_cache import StampedCache
from scanner_app.sessions import service as service
from scanner_app.sessions.listing import name_key
from scanner_app.sessions.totals import MAX_AGE_SECONDS, kept_under_stamp

bp = Blueprint("api_sessions", __name__, url_prefix="/api/v1/sessions")

_COUNT = {"type": "integer", "minimum": 0}
_COUNTERS = {
    "files_count": {**_COUNT, "description": "Uploaded files (an archive is one file)."},
    "captures_count": {**_COUNT, "description": "Images: scan frames, uploaded and extracted."},
    "valid_count": {**_COUNT, "description": "Images that decode completely."},
    "invalid_count": {**_COUNT, "description": "Images (or files) that do not."},
    "scans_count": _COUNT,
}
document_schemas(bp, {
    "Session": obj({
        "id": {"type": "integer"},
        "kind": {"type": "string", "enum": ["auto", "manual"]},
        "day": {"type": "string", "format": "date"},
        "name": {"type": "string"},
        "status": {"type": "string", "enum": [s.value for s in SessionStatus]},
        **_COUNTERS,
        "created_at": DATE_TIME,
        "updated_at": nullable(DATE_TIME),
    }),
    "SessionAnswer": obj({"session": ref("Session")}),
    "SessionList": obj({
        "sessions": {"type": "array", "items": ref("Session")},
        "totals": obj(_COUNTERS, description="Sums over all sessions, not only this page."),
        "page": {"type": "integer", "minimum": 1}, "pages": {"type": "integer", "minimum": 1},
        "per_page": {"type": "integer", "minimum": 1}, "total": {"type": "integer", "minimum": 0},
    }),
    "CurrentSession": obj({
        "mode": {"type": "string", "enum": ["auto", "manual"]},
        "session": nullable(ref("Session")),
    }, description="Where new scans and uploads go."),
})


def _one(session: ScanSession, status: int = 200) -> tuple[Response, int]:
    return jsonify({"session": session.to_dict()}), status


def _current_body() -> Response:
    mode, session = service.current_session()
    return jsonify({"mode": mode, "session": session.to_dict() if session else None})


@bp.get("")
def list_sessions() -> Response:
    """List sessions.
    ---
    get:
      tags: [sessions]
      summary: Sessions, newest first, a page at a time, with totals over all sessions
      description: per_page is 50 unless given; above 200 it is read as 200. A page past
        the last one answers the last one. page, per_page that are not whole numbers from 1
        are refused (400, code invalid_page).
      parameters:
        - {in: query, name: q, required: false, description: Only sessions whose name holds
           this text (any case)., schema: {type: string, maxLength: 200}}
        - page
        - per_page
      responses:
        200:
          description: A page of sessions.
          content: {application/json: {schema: SessionList}}
        400: {$ref: "#/components/responses/BadRequest"}
        401: {$ref: "#/components/responses/Unauthorized"}
    """
    page, per_page = requested_page()
    query = request.args.get("q", "")
    return Response(_list_body(page, per_page, query), mimetype="application/json")


# The list's JSON body depends on the sessions table alone (rows and totals), never on who
# asks: kept per (station, page, per_page, search) under the sessions-changed stamp (issue 15).
# At most 32 bodies (a 200-row page is about 66 KB): about 2 MB at worst per web process.
LIST_BODIES: StampedCache[bytes] = StampedCache(size=32, max_age=MAX_AGE_SECONDS)


def _list_body(page: int, per_page: int, query: str) -> bytes:
    def build() -> bytes:
        found = service.page_sessions(page, per_page, query)
        return jsonify({"sessions": [s.to_dict() for s in found.sessions],
                        "totals": found.totals, **found.shown.fields()}).get_data()

    return kept_under_stamp(LIST_BODIES, (page, per_page, name_key(query)), build)


@bp.post("")
def create_session() -> tuple[Response, int]:
    """Create a manual session.
    ---
    post:
      tags: [sessions]
      summary: Create a manual session (and, unless told otherwise, make it current)
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [name]
              properties:
                name: {type: string, minLength: 1, maxLength: 120}
                make_current: {type: boolean, default: true}
      responses:
        201:
          description: The new session.
          content: {application/json: {schema: SessionAnswer}}
        400: {$ref: "#/components/responses/BadRequest"}
        401: {$ref: "#/components/responses/Unauthorized"}
        409: {$ref: "#/components/responses/Conflict"}
    """
    body = json_object()
    make_current = body.get("make_current", True)
    if not isinstance(make_current, bool):
        raise BadRequest("'make_current' must be true or false.")
    return _one(service.create_manual_session(body.get("name"), make_current=make_current), 201)


@bp.get("/current")
def get_current() -> Response:
    """Where new work goes.
    ---
    get:
      tags: [sessions]
      summary: The session new scans and uploads go to
      responses:
        200:
          description: The current mode and session.
          content: {application/json: {schema: CurrentSession}}
        401: {$ref: "#/components/responses/Unauthorized"}
    """
    return _current_body()


@bp.put("/current")
def put_current() -> Response:
    """Choose where new work goes.
    ---
    put:
      tags: [sessions]
      summary: Make a session current, or null for today's automatic session
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [session_id]
              properties:
                session_id: {type: [integer, "null"], minimum: 1}
      responses:
        200:
          description: The current mode and session.
          content: {application/json: {schema: CurrentSession}}
        400: {$ref: "#/components/responses/BadRequest"}
        401: {$ref: "#/components/responses/Unauthorized"}
        404: {$ref: "#/components/responses/NotFound"}
    """
    body = json_object()
    if "session_id" not in body:
        raise BadRequest("Send {\"session_id\": <id>} to pick a session, or null for today's.")
    service.set_current_session(optional_id(body, "session_id"))
    return _current_body()


@bp.get("/<int:session_id>")
def get_session(session_id: int) -> tuple[Response, int]:
    """One session.
    ---
    get:
      tags: [sessions]
      summary: One session
      responses:
        200:
          description: The session.
          content: {application/json: {schema: SessionAnswer}}
        401: {$ref: "#/components/responses/Unauthorized"}
        404: {$ref: "#/components/responses/NotFound"}
    """
    return _one(service.get_session(session_id))


@bp.patch("/<int:session_id>")
def patch_session(session_id: int) -> tuple[Response, int]:
    """Rename a session or change its status.
    ---
    patch:
      tags: [sessions]
      summary: Rename a session, or mark it active or completed
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              properties:
                name: {type: string, minLength: 1, maxLength: 120}
                status: {type: string, enum: [active, completed]}
      responses:
        200:
          description: The session as it is now.
          content: {application/json: {schema: SessionAnswer}}
        400: {$ref: "#/components/responses/BadRequest"}
        401: {$ref: "#/components/responses/Unauthorized"}
        404: {$ref: "#/components/responses/NotFound"}
        409: {$ref: "#/components/responses/Conflict"}
    """
    return _one(service.update_session(session_id, json_object()))


@bp.delete("/<int:session_id>")
def delete_session(session_id: int) -> tuple[str, int]:
    """Delete a session.
    ---
    delete:
      tags: [sessions]
      summary: Delete a session with its directory
      responses:
        204: {description: Deleted.}
        401: {$ref: "#/components/responses/Unauthorized"}
        404: {$ref: "#/components/responses/NotFound"}
        409: {$ref: "#/components/responses/Conflict"}
    """
    service.delete_session(session_id)
    return "", 204


@bp.post("/<int:session_id>/merge")
def merge_session(session_id: int) -> tuple[Response, int]:
    """Merge a session into another.
    ---
    post:
      tags: [sessions]
      summary: Move files, captures and scans into another session; this one is removed
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [into]
              properties:
                into: {type: integer, minimum: 1}
      responses:
        200:
          description: The session merged into.
          content: {application/json: {schema: SessionAnswer}}
        400: {$ref: "#/components/responses/BadRequest"}
        401: {$ref: "#/components/responses/Unauthorized"}
        404: {$ref: "#/components/responses/NotFound"}
        409: {$ref: "#/components/responses/Conflict"}
    """
    body = json_object()
    into = optional_id(body, "into")
    if into is None:
        raise BadRequest("Say which session to merge into: {\"into\": <id>}.")
    return _one(service.merge_sessions(session_id, into))
