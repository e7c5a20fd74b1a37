"""A session's files for the browser: thumbnails and images, served only from inside that
session's directory: safe_join refuses '..' and absolute paths, and the resolved path must
still lie inside the directory (so a symlink cannot point out of it).

Uploads come from anyone on the network, so a stored file is shown inline only when its
Capture row says it is a valid image AND its first bytes are an image format: then with that
image type. Everything else (an .html or .svg "photo", session.json, a ZIP) is a download:
application/octet-stream, Content-Disposition: attachment, nosniff and a sandboxing CSP, so
nothing in it can run as the station's own page. Caches are private: a session's files are
behind a login.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, request, send_file
from sqlalchemy import select
from werkzeug.security import safe_join

from scanner_app.models import Capture
from scanner_app.platform.errors import NotFound
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import current_storage
from scanner_app.platform.web.security import FILE_CSP
from scanner_app.sessions import service as sessions

bp = Blueprint("files", __name__, url_prefix="/sessions/<int:session_id>")

_NO_FILE = "That file is not in this session. It may have been moved by a merge or deleted."

# Leading bytes of the image formats the station accepts, and the type they are served as.
_IMAGE_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)


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


def _image_type(path: Path) -> str | None:
    with path.open("rb") as handle:
        head = handle.read(8)
    return next((kind for magic, kind in _IMAGE_MAGIC if head.startswith(magic)), None)


def _valid_capture(session_id: int, relpath: str) -> bool:
    return db.session.scalar(
        select(Capture.id).where(Capture.session_id == session_id, Capture.path == relpath,
                                 Capture.valid.is_(True)).limit(1)) is not None


def _send(path: Path, max_age: int, shown_as_image: bool) -> Response:
    kind = _image_type(path) if shown_as_image else None
    if kind:
        response = send_file(path, mimetype=kind, max_age=max_age, conditional=True)
    else:
        response = send_file(path, mimetype="application/octet-stream", as_attachment=True,
                             download_name=path.name, max_age=max_age, conditional=True)
    response.cache_control.public = False
    response.cache_control.private = True
    response.headers["Content-Security-Policy"] = FILE_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/files/<path:relpath>")
def file(session_id: int, relpath: str) -> Response:
    path = _inside(_session_dir(session_id), relpath)
    return _send(path, max_age=3600, shown_as_image=_valid_capture(session_id, relpath))


@bp.get("/thumbnails/<int:capture_id>.jpg")
def thumbnail(session_id: int, capture_id: int) -> Response:
    """metadata/thumbnails/<capture id>.jpg once the scan or upload job made it (only for a
    valid image); until then the valid image itself, when `src` names its path (as listed with
    the capture). An invalid capture has no thumbnail."""
    root = _session_dir(session_id)
    capture = db.session.get(Capture, capture_id)
    if capture is None or capture.session_id != session_id or not capture.valid:
        raise NotFound(_NO_FILE, code="no_such_file")
    try:
        return _send(_inside(root, f"metadata/thumbnails/{capture_id}.jpg"), max_age=3600,
                     shown_as_image=True)
    except NotFound:
        if request.args.get("src", "") != capture.path:
            raise
    # Short cache: the thumbnail may be made a moment later.
    return _send(_inside(root, capture.path), max_age=10, shown_as_image=True)
