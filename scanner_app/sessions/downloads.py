"""GET /api/v1/sessions/<id>/export.zip: the session directory as a ZIP, streamed with its
exact size (Content-Length), without the per-scan ZIPs of exports/."""

from __future__ import annotations

from flask import Blueprint, Response

from scanner_app.platform.storage import current_storage
from scanner_app.platform.zips import session_export_filename, session_zip, zip_response
from scanner_app.sessions.service import get_session

bp = Blueprint("api_exports", __name__, url_prefix="/api/v1/sessions")


@bp.get("/<int:session_id>/export.zip")
def export_session(session_id: int) -> Response:
    """Download a session as a ZIP.
    ---
    get:
      tags: [sessions]
      summary: The session directory as a ZIP (images, metadata; not the per-scan ZIPs)
      parameters:
        - {in: path, name: session_id, required: true, schema: {type: integer, minimum: 1}}
      responses:
        200:
          description: A ZIP archive, streamed; Content-Length is its exact size.
          headers:
            Content-Length: {schema: {type: integer}}
          content:
            application/zip: {schema: {type: string, format: binary}}
        401: {$ref: "#/components/responses/Unauthorized"}
        404: {$ref: "#/components/responses/NotFound"}
    """
    session = get_session(session_id)  # 404 with the error body for an unknown id
    filename = session_export_filename(session.id, session.name)
    # Listed now; the files are read while the response is sent (no app context needed).
    return zip_response(session_zip(current_storage().session_dir(session.id)), filename)
