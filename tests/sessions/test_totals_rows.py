"""What a page of sessions costs per row (issue 15): Session.to_dict reads the loaded row
directly; it must answer the same for a row just loaded, one expired by a commit and one
with attributes never loaded, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import load_only

from scanner_app.models import ScanSession, SessionStatus
from scanner_app.platform.extensions import db


def test_to_dict_is_the_same_loaded_expired_or_partly_loaded(app):
    at = datetime(2026, 3, 4, 5, 6, 7, 891011)
    with app.app_context():
        row = ScanSession(kind="manual", day=date(2026, 3, 4), name="Trial", status="completed",
                          files_count=1, captures_count=5, valid_count=3, invalid_count=2,
                          scans_count=4, created_at=at, updated_at=at)
        db.session.add(row)
        db.session.commit()  # expires the row: to_dict loads it again
        session_id = row.id
        expected = {"id": session_id, "kind": "manual", "day": "2026-03-04", "name": "Trial",
                    "status": "completed", "files_count": 1, "captures_count": 5,
                    "valid_count": 3, "invalid_count": 2, "scans_count": 4,
                    "created_at": "2026-03-04T05:06:07Z", "updated_at": "2026-03-04T05:06:07Z"}
        assert row.to_dict() == expected
        assert row.to_dict() == expected  # now loaded
        db.session.expunge_all()
        partial = db.session.scalars(select(ScanSession).where(ScanSession.id == session_id)
                                     .options(load_only(ScanSession.name))).one()
        assert partial.to_dict() == expected  # the rest is loaded on demand
        partial.status = SessionStatus.ACTIVE  # a change not yet flushed shows
        assert partial.to_dict()["status"] == "active"
        db.session.rollback()


def test_list_rows_link_to_each_session_page(app, client):
    import re

    from flask import url_for

    ids = []
    for name in ("Trial one", "Trial two"):
        response = client.post("/api/v1/sessions", json={"name": name, "make_current": False})
        assert response.status_code == 201
        body = response.get_json()
        ids.append(body.get("session", body)["id"])
    html = client.get("/sessions", headers={"HX-Request": "true"}).get_data(as_text=True)
    links = re.findall(r'<th scope="row">\s*<a href="([^"]+)">', html)
    with app.test_request_context():
        expected = [url_for("sessions.show", session_id=i) for i in reversed(ids)]
    assert links == expected
    for link in links:
        assert client.get(link).status_code == 200
