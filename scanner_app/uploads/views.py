"""The upload page: files sent with htmx (progress bar while the body travels), then the
uploads' processing status, which polls itself while any upload is still processing."""

from __future__ import annotations

from flask import Blueprint, redirect, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from scanner_app.models import ScanSession, Upload
from scanner_app.platform.errors import BadRequest
from scanner_app.platform.extensions import db
from scanner_app.platform.web.converters import MAX_ID
from scanner_app.platform.web.forms import form_answer
from scanner_app.platform.web.htmx import UPLOADS_CHANGED, is_htmx, trigger
from scanner_app.platform.web.render import HtmlWithHeaders, render
from scanner_app.sessions import service as sessions
from scanner_app.uploads import service as upload_service

bp = Blueprint("uploads", __name__)

MAX_POLLED_IDS = 500  # one request's worth of files (the 500-file batch)


def _listing(uploads: list[Upload], poll_url: str, session: ScanSession | None = None) -> dict:
    processing = sum(1 for u in uploads if u.status.is_processing)
    return {"uploads": uploads, "poll_url": poll_url, "processing": processing,
            "upload_session": session}


def uploads_context(session_id: int) -> dict:
    """A session's uploads for its page, polled at /sessions/<id>/uploads."""
    return _listing(upload_service.list_uploads(session_id),
                    url_for("uploads.of_session", session_id=session_id))


def _batch_context(ids: list[int]) -> dict:
    # One query for every id polled (a batch is up to MAX_POLLED_IDS files), in the order asked.
    found = {u.id: u for u in db.session.scalars(select(Upload).where(Upload.id.in_(set(ids))))}
    missing = next((upload_id for upload_id in ids if upload_id not in found), None)
    if missing is not None:
        upload_service.get_upload(missing)  # the one sentence for an upload that is gone
    uploads = [found[upload_id] for upload_id in ids]
    session = sessions.get_session(uploads[0].session_id) if uploads else None
    poll_url = url_for("uploads.batch", ids=",".join(str(i) for i in ids))
    return _listing(uploads, poll_url, session)


def _form_context() -> dict:
    """Where the files go: the current session, or one picked (searched for by name; the
    link's ?session_id= is picked already)."""
    mode, current = sessions.current_session()
    chosen = request.args.get("session_id", "")
    chosen_id = int(chosen) if chosen.isascii() and chosen.isdigit() else None
    picker = sessions.picker_context(
        "upload", session_id=chosen_id if chosen_id and chosen_id <= MAX_ID else None,
        current=current)
    return {"mode": mode, "current": current, "picker": picker}


@bp.get("/upload")
def index() -> str:
    return render("uploads", "index", **_form_context(), **_listing([], ""))


@bp.post("/upload")
def send() -> str | Response:
    session_id, uploads = upload_service.accept_upload_request(request)
    ids = [u.id for u in uploads]
    return form_answer(url_for("sessions.show", session_id=session_id),
                lambda: render("uploads", "index", partial="list", **_batch_context(ids)))


@bp.get("/uploads/batch")
def batch() -> str:
    raw = [part for part in request.args.get("ids", "").split(",") if part]
    if not raw or len(raw) > MAX_POLLED_IDS or not all(part.isdigit() for part in raw):
        raise BadRequest("Ask for uploads by their ids, e.g. ?ids=3,4,5.")
    # The poll (htmx) gets the list alone; only a whole page needs the form's session picker.
    form = {} if is_htmx() else _form_context()
    return render("uploads", "index", partial="list", **form,
                  **_batch_context([int(part) for part in raw]))


# Sent with the last answer of the polling list (no upload processing any more): the
# session's counters and captures grid then refresh themselves, once.
UPLOADS_SETTLED = trigger(UPLOADS_CHANGED)


@bp.get("/sessions/<int:session_id>/uploads")
def of_session(session_id: int) -> str | HtmlWithHeaders | Response:
    """A session's uploads, which the session page loads with hx-get."""
    sessions.get_session(session_id)
    if not is_htmx():
        return redirect(url_for("sessions.show", session_id=session_id))
    context = uploads_context(session_id)
    html = render("uploads", "index", partial="list", **context)
    return (html, 200, UPLOADS_SETTLED) if not context["processing"] else html
