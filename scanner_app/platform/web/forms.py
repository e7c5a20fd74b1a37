"""Reading browser form fields. A bad value becomes a BadRequest with a sentence that says
what to type instead, shown next to the form."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import redirect, request
from werkzeug.wrappers import Response

from scanner_app.platform.errors import BadRequest, NotFound
from scanner_app.platform.web.converters import MAX_ID, parse_id
from scanner_app.platform.web.htmx import is_htmx

T = TypeVar("T")


def optional_int(name: str, label: str, *, minimum: int = 1, maximum: int | None = None
                 ) -> int | None:
    """A blank field is None; otherwise a whole number in [minimum, maximum], written with
    ASCII digits (full-width '１２' is not a number here), never above what the database
    holds."""
    raw = (request.form.get(name) or request.args.get(name) or "").strip()
    if not raw:
        return None
    value = parse_id(raw, minimum=minimum, maximum=maximum)
    if value is None:
        shown = f" to {maximum}" if maximum is not None else ""
        raise BadRequest(f"{label} must be a whole number from {minimum}{shown}.",
                         code="invalid_form")
    if value > MAX_ID:  # an id no database row can have: nothing is there
        raise NotFound(f"{label} {value} does not exist; pick one from the list.")
    return value


def form_answer(location: str, partial: Callable[[], T]) -> T | Response:
    """After a POST: htmx gets the re-rendered partial; a plain form post (no JavaScript)
    gets a redirect, so reloading the page does not send the form again."""
    if is_htmx():
        return partial()
    return redirect(location, code=303)


def hx_redirect(location: str) -> Response:
    """Leave the page after an action that removed it (delete, merge)."""
    if is_htmx():
        return Response("", 204, {"HX-Redirect": location})
    return redirect(location, code=303)
