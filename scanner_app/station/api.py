"""GET /api/v1/station: what the station runs on."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from scanner_app.config import current_settings
from scanner_app.platform.web.openapi import document_schemas, obj
from scanner_app.scans import service as scans

bp = Blueprint("api_station", __name__, url_prefix="/api/v1/station")

document_schemas(bp, {"Station": obj({
    "hal": {"type": "string", "enum": ["mock", "pi"]},
    "mock_hardware": {"type": "boolean"},
    "profiles": {"type": "array", "items": {"type": "string"}},
    "default_profile": {"type": "string"},
})})


@bp.get("")
def station_info() -> Response:
    """What the station runs on; `mock_hardware` tells scripts and the UI banner.
    ---
    get:
      tags: [station]
      summary: The hardware driver, and the scan profiles a scan can name
      responses:
        200:
          description: The station.
          content: {application/json: {schema: Station}}
        401: {$ref: "#/components/responses/Unauthorized"}
    """
    settings = current_settings()
    profiles = scans.effective_profiles(settings)  # the settings page's, over the files'
    return jsonify({
        "hal": settings.hal.driver,
        "mock_hardware": settings.hal.driver == "mock",
        "profiles": sorted(profiles),
        "default_profile": scans.default_profile_name(settings, profiles),
    })
