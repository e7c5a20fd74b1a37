from __future__ import annotations

from typing import Any

from flask import request

from scanner_app.platform.errors import BadRequest, NotFound
from scanner_app.platform.web.converters import MAX_ID, parse_id


def json_object() -> dict[str, Any]:
    """The request's JSON object body, or a 400 that says what was expected."""
    body = request.get_json(silent=True)
    if body is None and not request.get_data(cache=True):
        return {}
    if not isinstance(body, dict):
        raise BadRequest("Send a JSON object as the request body, with Content-Type "
                         "application/json.", code="invalid_json")
    return body


def optional_id(body: dict[str, Any], key: str) -> int | None:
    """A JSON id: a whole number (or a string of ASCII digits), or null. An id beyond what
    the database can hold names nothing: 404, like an unknown id."""
    value = body.get(key)
    if value is None:
        return None
    number = parse_id(value, maximum=None)
    if number is None:
        raise BadRequest(f"'{key}' must be a session id (a whole number) or null.",
                         code="invalid_id")
    if number > MAX_ID:
        raise NotFound(f"There is no session {number}. Pick one from the session list.")
    return number
