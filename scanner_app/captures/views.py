"""A session's files for the browser: thumbnails and images, served only from inside that
session's directory: safe_join refuses '..' and absolute paths, and the resolved path must
still lie inside the directory (so a symlink cannot point out of it)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, request, send_file
from werkzeug.security import safe_join

from scanner_app.platform.errors import NotFound
from scanner_app.platform.storage import current_storage
from scanner_app.sessions import service as sessions

bp = Blueprint("files", __name__, url_prefix="/sessions/<int:session_id>")

_NO_FILE = "That file is not in this session. It may have been moved by a merge or deleted."


def _session_dir(session_id: int) -> Path:
    sessions.get_session(session_id)  # 404 with a sentence for an unknown session
    return current_storage().session_dir(session_id)


def _inside(root: Path, relpath: str) -> Path:
    joined = safe_join(str(root), relpath)  # None for '..', absolute paths and the like
    if joined is None:
        raise NotFound(_NO_FILE, code="no_such_file")
    real, real_root = Path(joined).resolve(), root.resolve()
    if not real.is_relative_to(real_root) or not real.is_file():
        raise NotFound(_NO_FILE, code="no_such_file")
    return real


def _send(session_id: int, relpath: str, max_age: int) -> Response:
    return send_file(_inside(_session_dir(session_id), relpath), max_age=max_age,
                     conditional=True)


@bp.get("/files/<path:relpath>")
def file(session_id: int, relpath: str) -> Response:
    return _send(session_id, relpath, max_age=3600)


@bp.get("/thumbnails/<int:capture_id>.jpg")
def thumbnail(session_id: int, capture_id: int) -> Response:
    """metadata/thumbnails/<capture id>.jpg once the scan or upload job made it; until then the
    image itself (`src`, a path inside the session, as listed with the capture)."""
    root = _session_dir(session_id)
    try:
        thumb = _inside(root, f"metadata/thumbnails/{capture_id}.jpg")
    except NotFound:
        fallback = request.args.get("src", "")
        if not fallback:
            raise
        # Short cache: the thumbnail may be made a moment later.
        return send_file(_inside(root, fallback), max_age=10, conditional=True)
    return send_file(thumb, max_age=3600, conditional=True)
