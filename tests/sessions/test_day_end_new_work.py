"""CONTRACT: "New work (a scan or an upload) for a completed session reactivates it" stays
true for an auto session the station completed at the end of its day; through the real API
and scan service, on SQLite and PostgreSQL (the scan's queue is a real Redis)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlalchemy import select

from scanner_app.models import ScanSession, ScanStatus, SessionStatus
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import current_storage
from scanner_app.sessions.day_end import complete_past_days
from scanner_app.sessions.resolver import forget_known_dirs, resolve_session
from tests.conftest import build_app
from tests.support import api_client, dispose, jpeg_bytes

REDIS_DB = 15  # a database of the test Redis for these tests' queued scans alone
NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def _fresh_cache():
    forget_known_dirs()
    yield
    forget_known_dirs()


@pytest.fixture
def queued_app(data_dir, database_url, redis_server) -> Iterator:
    url = redis_server.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    app = build_app(data_dir, database_url, SCANNER_REDIS_URL=url)
    yield app
    dispose(app)
    client.flushdb()
    client.close()


def yesterdays_completed_session() -> int:
    yesterday = resolve_session(now=NOW - timedelta(days=1))
    resolve_session(now=NOW)  # today's: yesterday's is over
    assert status_of(yesterday) is SessionStatus.COMPLETED
    return yesterday


def status_of(session_id: int) -> SessionStatus:
    db.session.commit()
    return db.session.scalar(select(ScanSession.status).where(ScanSession.id == session_id))


def record_status(session_id: int) -> str:
    return json.loads(current_storage().session_record_path(session_id).read_text())["status"]


def test_an_upload_reactivates_an_auto_completed_session(app):
    with app.app_context():
        yesterday = yesterdays_completed_session()
    response = api_client(app).post("/api/v1/uploads", data={
        "session_id": str(yesterday), "files": (io.BytesIO(jpeg_bytes(seed=3)), "late.jpg")})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["session_id"] == yesterday
    with app.app_context():
        assert status_of(yesterday) is SessionStatus.ACTIVE
        assert record_status(yesterday) == "active"


def test_a_scan_reactivates_an_auto_completed_session_and_keeps_it_active(queued_app):
    from scanner_app.scans.service import start_scan

    with queued_app.app_context():
        yesterday = yesterdays_completed_session()
        scan = start_scan(yesterday, profile="quick", frames=4)
        assert scan.session_id == yesterday and scan.status is ScanStatus.QUEUED
        assert status_of(yesterday) is SessionStatus.ACTIVE
        assert record_status(yesterday) == "active"
        # A scan queued in it: tomorrow's completion takes today's idle session, not this one.
        completed = complete_past_days(NOW.date() + timedelta(days=1))
        assert completed and yesterday not in completed
        assert status_of(yesterday) is SessionStatus.ACTIVE
