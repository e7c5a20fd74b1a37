"""/healthz (public: JSON for monitors and systemd, a page for a person's browser) and the
status banner every signed-in page polls (worker or Redis down?)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, redirect, request, url_for

from scanner_app.config import current_settings
from scanner_app.platform.web.htmx import is_htmx
from scanner_app.platform.web.render import render
from scanner_app.station.health import queue_status, run_checks

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response | str, int]:
    """200 {"status": "ok", "checks": {...}} when every check passes; otherwise 503 with the
    same body plus the station's error body naming the first failing check. A browser (it
    prefers HTML) gets the same checks as a page in words."""
    report = run_checks(current_settings())
    status = 200 if report["status"] == "ok" else 503
    accept = request.accept_mimetypes
    if accept["text/html"] > accept["application/json"]:  # a browser; */* stays JSON
        return render("station", "health", report=report), status
    if report["status"] == "ok":
        return jsonify(report), 200
    name, check = next((n, c) for n, c in report["checks"].items() if c["status"] != "ok")
    code = "database_unreachable" if name == "database" else f"{name}_unhealthy"
    report["error"] = {"code": code, "message": check["message"]}
    response = jsonify(report)
    response.headers["Retry-After"] = "5"
    return response, 503


@bp.get("/station/status-banner")
def status_banner() -> str | Response:
    """The banner partial: empty while the worker and Redis are fine (polled every 5 s)."""
    if not is_htmx():  # only the layout's poll asks for it; a person gets the dashboard
        return redirect(url_for("dashboard.index"))
    status = queue_status(current_settings())
    return render("station", "index", partial="status_banner", banner_status=status,
                  polled=True)
