from __future__ import annotations

from flask import Blueprint, Response, jsonify

from scanner_app.platform.errors import BadRequest
from scanner_app.platform.web.json_body import json_object, optional_id
from scanner_app.sessions import service as service

bp = Blueprint("api_sessions", __name__, url_prefix="/api/v1/sessions")


def _current_body() -> Response:
    mode, session = service.current_session()
    return jsonify({"mode": mode, "session": session.to_dict() if session else None})


@bp.get("")
def list_sessions() -> Response:
    sessions, totals = service.list_sessions()
    return jsonify({"sessions": [s.to_dict() for s in sessions], "totals": totals})


@bp.post("")
def create_session() -> tuple[Response, int]:
    body = json_object()
    make_current = body.get("make_current", True)
    if not isinstance(make_current, bool):
        raise BadRequest("'make_current' must be true or false.")
    session = service.create_manual_session(body.get("name"), make_current=make_current)
    return jsonify(session.to_dict()), 201


@bp.get("/current")
def get_current() -> Response:
    return _current_body()


@bp.put("/current")
def put_current() -> Response:
    body = json_object()
    if "session_id" not in body:
        raise BadRequest("Send {\"session_id\": <id>} to pick a session, or null for today's.")
    service.set_current_session(optional_id(body, "session_id"))
    return _current_body()


@bp.get("/<int:session_id>")
def get_session(session_id: int) -> Response:
    return jsonify(service.get_session(session_id).to_dict())


@bp.patch("/<int:session_id>")
def patch_session(session_id: int) -> Response:
    return jsonify(service.update_session(session_id, json_object()).to_dict())


@bp.delete("/<int:session_id>")
def delete_session(session_id: int) -> tuple[str, int]:
    service.delete_session(session_id)
    return "", 204


@bp.post("/<int:session_id>/merge")
def merge_session(session_id: int) -> Response:
    body = json_object()
    into = optional_id(body, "into")
    if into is None:
        raise BadRequest("Say which session to merge into: {\"into\": <id>}.")
    return jsonify(service.merge_sessions(session_id, into).to_dict())


@bp.get("/<int:session_id>/captures")
def list_captures(session_id: int) -> Response:
    from flask import request

    from scanner_app.captures.service import list_captures as query

    valid_arg = request.args.get("valid")
    if valid_arg not in (None, "true", "false"):
        raise BadRequest("'valid' must be true or false.")
    page_arg = request.args.get("page", "1")
    if not page_arg.isdigit() or int(page_arg) < 1:
        raise BadRequest("'page' must be a whole number from 1.")
    valid = None if valid_arg is None else valid_arg == "true"
    captures, page, pages = query(session_id, valid=valid, page=int(page_arg))
    return jsonify({"captures": [c.to_dict() for c in captures], "page": page, "pages": pages})
