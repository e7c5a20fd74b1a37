"""GET /api/v1/sessions/<id>/export.zip: the whole session directory as a ZIP, streamed."""

from __future__ import annotations

from flask import Blueprint, Response

from scanner_app.platform.storage import current_storage
from scanner_app.platform.zips import iter_tree_files, session_export_filename, stream_zip
from scanner_app.sessions.service import get_session

bp = Blueprint("api_exports", __name__, url_prefix="/api/v1/sessions")


@bp.get("/<int:session_id>/export.zip")
def export_session(session_id: int) -> Response:
    session = get_session(session_id)  # 404 with the error body for an unknown id
    filename = session_export_filename(session.id, session.name)
    root = current_storage().session_dir(session.id)
    # The generator needs no app context: it only reads files under `root`.
    body = stream_zip(iter_tree_files(root))
    return Response(
        body,
        mimetype="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
        direct_passthrough=True,
    )
