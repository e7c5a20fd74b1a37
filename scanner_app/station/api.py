from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

bp = Blueprint("api_station", __name__, url_prefix="/api/v1/station")


@bp.get("")
def station_info() -> Response:
    """What the station runs on; `mock_hardware` tells scripts and the UI banner."""
    settings = current_app.config["SCANNER_SETTINGS"]
    return jsonify({
        "hal": settings.hal.driver,
        "mock_hardware": settings.hal.driver == "mock",
        "profiles": sorted(settings.profiles),
        "default_profile": settings.default_profile,
    })
