from __future__ import annotations

from typing import Any

from flask import request

from scanner_app.platform.errors import BadRequest


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
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise BadRequest(f"'{key}' must be a session id (a whole number) or null.",
                         code="invalid_id")
    return int(value)
