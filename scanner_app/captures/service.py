"""Listing a session's captures (images), oldest first, a page at a time."""

from __future__ import annotations

import math

from sqlalchemy import func, select

from scanner_app.models import Capture
from scanner_app.platform.extensions import db
from scanner_app.sessions.service import get_session

PAGE_SIZE = 100


def list_captures(
    session_id: int, valid: bool | None = None, page: int = 1, per_page: int = PAGE_SIZE
) -> tuple[list[Capture], int, int]:
    """Returns (captures, page, pages); pages is at least 1."""
    get_session(session_id)
    query = select(Capture).where(Capture.session_id == session_id)
    if valid is not None:
        query = query.where(Capture.valid.is_(valid))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)
    rows = db.session.scalars(
        query.order_by(Capture.created_at, Capture.id).offset((page - 1) * per_page).limit(per_page)
    ).all()
    return list(rows), page, pages
