"""One error body for the whole station: {"error": {"code", "message"}}.

Services raise StationError subclasses with a sentence for a person; the handlers below turn
them (and Werkzeug's HTTP errors) into that body for the API, or an error page for browsers.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException


class StationError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None
                 ) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status


class BadRequest(StationError):
    status, code = 400, "bad_request"


class NotFound(StationError):
    status, code = 404, "not_found"


class Conflict(StationError):
    status, code = 409, "conflict"


class ServiceUnavailable(StationError):
    status, code = 503, "unavailable"


# Codes and sentences for Werkzeug's own errors (routing, body size, methods).
_HTTP_CODES = {413: "too_large"}
_HTTP_MESSAGES = {
    404: "There is nothing at this address. Check the link or go back to the start page.",
    405: "This address does not accept that kind of request.",
    413: "The upload is larger than this station accepts. Send fewer or smaller files, "
    "or raise SCANNER_MAX_UPLOAD_MB.",
}


def wants_json() -> bool:
    # /healthz answers machines (monitors, systemd), so its errors are JSON too.
    return request.path.startswith("/api/") or request.path == "/healthz" or (
        request.accept_mimetypes.best == "application/json"
    )


def error_response(status: int, code: str, message: str) -> tuple[Response | str, int]:
    if wants_json():
        return jsonify({"error": {"code": code, "message": message}}), status
    from scanner_app.platform.web.render import render

    return render("errors", "page", partial="error", status=status, code=code,
                  message=message), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(StationError)
    def _station_error(exc: StationError) -> tuple[Response | str, int]:
        return error_response(exc.status, exc.code, exc.message)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response | str, int]:
        status = exc.code or 500
        slug = _HTTP_CODES.get(status) or (exc.name or "error").lower().replace(" ", "_")
        message = _HTTP_MESSAGES.get(status) or exc.description or exc.name
        return error_response(status, slug, message)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response | str, int]:
        app.logger.exception("Unhandled error on %s %s", request.method, request.path)
        return error_response(
            500,
            "internal_error",
            "Something went wrong on the station. The details are in its log; "
            "try again, and report it if it keeps happening.",
        )
