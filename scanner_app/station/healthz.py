from __future__ import annotations

from flask import Blueprint, Response, jsonify

from scanner_app.station.health import check_health

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(check_health())
