"""Scan profiles API: GET/PUT/DELETE /api/v1/profiles[/<name>]; PUT /api/v1/profiles/default.

config/scanner.toml holds the default profiles; PUT stores a profile in the database, which
overrides the file's of the same name (or adds one), DELETE ("reset to default") removes the
stored one. Scans already started keep the profile they started with."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from scanner_app.platform.errors import NotFound
from scanner_app.platform.web.json_body import json_object
from scanner_app.platform.web.openapi import document_schemas, obj, ref
from scanner_app.scans import service as scans
from scanner_app.station.settings_access import require_settings_editor

bp = Blueprint("api_profiles", __name__, url_prefix="/api/v1/profiles")

_RING = obj({"elevation_deg": {"type": "number"},
             "frames": {"type": "integer", "minimum": 1}})
_FIELDS = {
    "frames": {"type": "integer", "minimum": 1,
               "description": "Frames around one turn (when there are no rings)."},
    "settle_seconds": {"type": "number", "minimum": 0, "maximum": 60},
    "resolution": {"type": "array", "items": {"type": "integer", "minimum": 16,
                                              "maximum": 16384},
                   "minItems": 2, "maxItems": 2, "description": "[width, height] in pixels."},
    "jpeg_quality": {"type": "integer", "minimum": 1, "maximum": 100},
    "rings": {"type": "array", "items": _RING,
              "description": "Camera elevations (within the tilt's limits) and frames at "
                             "each; empty: one ring of `frames`."},
    "turn_over": {"type": "boolean"},
    "auto_reconstruct": {"type": "boolean"},
}
document_schemas(bp, {
    "Profile": obj({
        "name": {"type": "string"},
        **_FIELDS,
        "frames_per_scan": {"type": ["integer", "null"],
                            "description": "Every ring of both passes; null when this rig "
                                           "cannot take the profile (a scan says why)."},
        "is_default": {"type": "boolean"},
        "in_config": {"type": "boolean",
                      "description": "config/scanner.toml defines a profile of this name."},
        "customised": {"type": "boolean",
                       "description": "Stored in the database (DELETE resets it)."},
    }),
    "ProfileInput": {**obj(_FIELDS, required=["frames", "settle_seconds", "resolution",
                                              "jpeg_quality"]),
                     "additionalProperties": False},
    "ProfileAnswer": obj({"profile": ref("Profile")}),
    "ProfileList": obj({"profiles": {"type": "array", "items": ref("Profile")},
                        "default_profile": {"type": "string"}}),
})

def _answer(name: str, status: int = 200) -> tuple[Response, int]:
    profile = scans.profile_for(name)
    return jsonify({"profile": scans.profile_json(profile)}), status


def _list() -> Response:
    return jsonify({"profiles": scans.profiles_json(),
                    "default_profile": scans.default_profile_name()})


@bp.get("")
def list_profiles() -> Response:
    """Every scan profile.
    ---
    get:
      tags: [profiles]
      summary: The scan profiles (config/scanner.toml's, with the settings page's changes)
      responses:
        200:
          description: The profiles, by name, and the default.
          content: {application/json: {schema: ProfileList}}
        401: {$ref: "#/components/responses/Unauthorized"}
    """
    return _list()


@bp.put("/default")
def choose_default() -> Response:
    """Choose the default profile.
    ---
    put:
      tags: [profiles]
      summary: Choose the profile a scan uses when it names none
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [name]
              properties:
                name: {type: string}
      responses:
        200:
          description: The profiles, with the new default.
          content: {application/json: {schema: ProfileList}}
        400: {$ref: "#/components/responses/BadRequest"}
        401: {$ref: "#/components/responses/Unauthorized"}
        403:
          description: A browser login that is not an admin's.
          content: {application/json: {schema: Error}}
    """
    require_settings_editor()
    scans.set_default_profile(json_object().get("name"))
    return _list()


@bp.get("/<name>")
def get_profile(name: str) -> tuple[Response, int]:
    """One scan profile.
    ---
    get:
      tags: [profiles]
      summary: One scan profile
      responses:
        200:
          description: The profile.
          content: {application/json: {schema: ProfileAnswer}}
        401: {$ref: "#/components/responses/Unauthorized"}
        404: {$ref: "#/components/responses/NotFound"}
    """
    if name not in scans.effective_profiles():
        raise NotFound(f"There is no scan profile {name!r}. GET /api/v1/profiles lists them.")
    return _answer(name)


@bp.put("/<name>")
def put_profile(name: str) -> tuple[Response, int]:
    """Save a scan profile.
    ---
    put:
      tags: [profiles]
      summary: Create or change a scan profile (stored in the database)
      requestBody:
        required: true
        content:
          application/json:
            schema: ProfileInput
      responses:
        200:
          description: The profile as saved.
          content: {application/json: {schema: ProfileAnswer}}
        400: {$ref: "#/components/responses/BadRequest"}
        401: {$ref: "#/components/responses/Unauthorized"}
        403:
          description: A browser login that is not an admin's.
          content: {application/json: {schema: Error}}
    """
    require_settings_editor()
    saved = scans.save_profile(name, json_object())
    return _answer(saved.name)


@bp.delete("/<name>")
def reset_profile(name: str) -> tuple[Response, int] | Response:
    """Reset a scan profile.
    ---
    delete:
      tags: [profiles]
      summary: Reset a profile to config/scanner.toml's (or remove one only the database has)
      responses:
        200:
          description: The file's profile, back in effect.
          content: {application/json: {schema: ProfileAnswer}}
        204: {description: The profile existed only in the database and is gone.}
        404: {$ref: "#/components/responses/NotFound"}
        400: {$ref: "#/components/responses/BadRequest"}
        401: {$ref: "#/components/responses/Unauthorized"}
        403:
          description: A browser login that is not an admin's.
          content: {application/json: {schema: Error}}
    """
    require_settings_editor()
    restored = scans.reset_profile(name)
    if restored is None:
        return Response(status=204)
    return _answer(restored.name)
