"""`scanner doctor` and the auto sessions of past days still marked active: reported as a
note, completed by --repair (record rewritten), a busy one left alone; on both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from scanner_app.models import Scan, ScanSession, ScanStatus, SessionStatus
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import StorageManager
from scanner_app.sessions.resolver import resolve_session
from scanner_app.station import doctor as doctor_service
from tests.support import run_cli, session_row


def _past_sessions(app) -> tuple[int, int, int]:
    """Today's auto session, then two of earlier days made after it (so nothing completed
    them); the older one has a scan running."""
    now = datetime.now(UTC)
    with app.app_context():
        today = resolve_session(now=now)
        idle = resolve_session(now=now - timedelta(days=2))
        busy = resolve_session(now=now - timedelta(days=5))
        db.session.add(Scan(session_id=busy, status=ScanStatus.RUNNING, profile="quick",
                            frames_planned=4, source="api", heartbeat_at=datetime.now(UTC)
                            .replace(tzinfo=None)))
        db.session.commit()
    return today, idle, busy


def _status(app, session_id: int) -> SessionStatus:
    with app.app_context():
        return db.session.scalar(select(ScanSession.status).where(ScanSession.id == session_id))


def test_the_doctor_notes_past_days_and_repair_completes_them(app, data_dir):
    today, idle, busy = _past_sessions(app)
    with app.app_context():
        report = doctor_service.run_doctor(repair=False)
        notes = [f.message for f in report.findings if "past day" in f.message]
        assert notes == [f"The automatic session {idle} of a past day is still active with "
                         "nothing under way. The station completes such sessions when the "
                         "next day's session is made and when it starts; --repair completes "
                         "them now."]
    assert _status(app, idle) is SessionStatus.ACTIVE  # a look changes nothing

    with app.app_context():
        report = doctor_service.run_doctor(repair=True)
        fixed = [f for f in report.findings if "past day" in f.message]
        assert [f.label for f in fixed] == ["FIXED"]
        assert f"session {idle} of a past day was still active" in fixed[0].message
    assert _status(app, idle) is SessionStatus.COMPLETED
    assert _status(app, busy) is SessionStatus.ACTIVE  # its scan is running
    assert _status(app, today) is SessionStatus.ACTIVE
    record = StorageManager(data_dir).session_record_path(idle)
    assert json.loads(record.read_text())["status"] == "completed"


def test_scanner_doctor_repair_from_the_command_line(sqlite_app, data_dir):
    _today, idle, _busy = _past_sessions(sqlite_app)
    looked = run_cli(data_dir, "doctor")
    assert f"NOTE  The automatic session {idle} of a past day is still active" in looked.stdout
    assert session_row(sqlite_app, idle).status is SessionStatus.ACTIVE

    repaired = run_cli(data_dir, "doctor", "--repair")
    assert f"FIXED  The automatic session {idle} of a past day was still active" in (
        repaired.stdout), repaired.stdout + repaired.stderr
    assert session_row(sqlite_app, idle).status is SessionStatus.COMPLETED
    again = run_cli(data_dir, "doctor")
    assert "past day" not in again.stdout
