"""A day's auto session is completed once the day is over (issue 15): when the next day's
auto session is made, at the web server's start and by `scanner doctor --repair`; never while
work is under way in it, never the session a person made current, never a manual session.
On SQLite and PostgreSQL. "Today" is set by the resolver's `now=` and by `complete_past_days`'
`today`, as the other session tests do."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from scanner_app.models import (
    Reconstruction,
    ReconstructionStatus,
    Scan,
    ScanSession,
    ScanStatus,
    SessionStatus,
    Upload,
    UploadStatus,
    transition,
)
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import current_storage
from scanner_app.sessions import day_end
from scanner_app.sessions.counters import bump_session_counters
from scanner_app.sessions.day_end import complete_past_days, complete_past_days_at_startup
from scanner_app.sessions.resolver import forget_known_dirs, resolve_session, station_today
from scanner_app.sessions.service import create_manual_session, set_current_session
from tests.conftest import build_app
from tests.support import dispose

MON = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
TUE, WED, THU = (MON + timedelta(days=n) for n in (1, 2, 3))


@pytest.fixture(autouse=True)
def _fresh_cache():
    forget_known_dirs()
    yield
    forget_known_dirs()


def status_of(session_id: int) -> SessionStatus:
    db.session.commit()  # a fresh read, not the identity map's copy
    return db.session.scalar(select(ScanSession.status).where(ScanSession.id == session_id))


def record_status(session_id: int) -> str:
    path = current_storage().session_record_path(session_id)
    return json.loads(path.read_text())["status"]


def add_scan(session_id: int, status: ScanStatus) -> int:
    scan = Scan(session_id=session_id, status=status, profile="quick", frames_planned=4,
                source="api")
    db.session.add(scan)
    bump_session_counters(session_id, scans_count=1)
    db.session.commit()
    return scan.id


def test_yesterdays_idle_auto_session_completes_when_todays_is_made(app):
    with app.app_context():
        monday = resolve_session(now=MON)
        assert resolve_session(now=MON) == monday  # later the same day: nothing completes
        assert status_of(monday) is SessionStatus.ACTIVE
        tuesday = resolve_session(now=TUE)
        assert status_of(monday) is SessionStatus.COMPLETED
        assert status_of(tuesday) is SessionStatus.ACTIVE
        assert record_status(monday) == "completed"  # session.json follows the row
        assert record_status(tuesday) == "active"


def test_the_day_ends_in_the_station_time_zone(data_dir, database_url):
    """Kiritimati is UTC+14: 09:00 UTC is still Monday there, 11:00 UTC already Tuesday."""
    app = build_app(data_dir, database_url, SCANNER_TIMEZONE="Pacific/Kiritimati")
    try:
        with app.app_context():
            monday = resolve_session(now=datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
            assert station_today(datetime(2026, 6, 1, 9, 0, tzinfo=UTC)) == date(2026, 6, 1)
            assert resolve_session(now=datetime(2026, 6, 1, 9, 59, tzinfo=UTC)) == monday
            assert status_of(monday) is SessionStatus.ACTIVE
            tuesday = resolve_session(now=datetime(2026, 6, 1, 10, 0, tzinfo=UTC))
            assert tuesday != monday
            assert status_of(monday) is SessionStatus.COMPLETED
    finally:
        dispose(app)


@pytest.mark.parametrize("busy", ["queued scan", "running scan", "paused scan",
                                  "unprocessed upload", "queued model", "running model"])
def test_a_busy_session_stays_active_and_completes_at_the_next_chance_once_idle(app, busy):
    with app.app_context():
        monday = resolve_session(now=MON)
        kind, _, what = busy.partition(" ")
        if what == "scan":
            scan_id = add_scan(monday, ScanStatus(kind))
        elif what == "upload":
            upload = Upload(session_id=monday, filename="a.jpg", size=3,
                            status=UploadStatus.PROCESSING)
            db.session.add(upload)
            db.session.commit()
        else:
            done = add_scan(monday, ScanStatus.COMPLETED)
            model = Reconstruction(scan_id=done, session_id=monday,
                                   status=ReconstructionStatus(kind))
            db.session.add(model)
            db.session.commit()

        resolve_session(now=TUE)
        assert status_of(monday) is SessionStatus.ACTIVE
        assert record_status(monday) == "active"

        # The work ends, through the status machines as the jobs end it.
        if what == "scan":
            if ScanStatus(kind) is ScanStatus.QUEUED:
                assert transition(Scan, scan_id, ScanStatus.CANCELLED)
            else:
                assert transition(Scan, scan_id, ScanStatus.FAILED)
        elif what == "upload":
            assert transition(Upload, upload.id, UploadStatus.DONE)
        else:
            assert transition(Reconstruction, model.id, ReconstructionStatus.CANCELLED)
        db.session.commit()
        assert status_of(monday) is SessionStatus.ACTIVE  # nothing runs on its own

        resolve_session(now=WED)  # the next opportunity: the next day's session
        assert status_of(monday) is SessionStatus.COMPLETED
        assert record_status(monday) == "completed"


def test_the_current_session_and_manual_sessions_are_never_completed(app):
    with app.app_context():
        monday = resolve_session(now=MON)
        trial = create_manual_session("Trial ABC-123", make_current=False).id
        db.session.execute(ScanSession.__table__.update()
                           .where(ScanSession.id == trial).values(day=date(2026, 6, 1)))
        db.session.commit()
        set_current_session(monday)  # a person chose Monday's auto session

        assert complete_past_days(date(2026, 6, 5)) == []
        assert status_of(monday) is SessionStatus.ACTIVE
        assert status_of(trial) is SessionStatus.ACTIVE

        set_current_session(None)  # back to today's auto session
        assert complete_past_days(date(2026, 6, 5)) == [monday]
        assert status_of(trial) is SessionStatus.ACTIVE
        assert record_status(trial) == "active"


def test_today_and_sessions_completed_by_a_person_are_left_as_they_are(app):
    with app.app_context():
        monday = resolve_session(now=MON)
        tuesday = resolve_session(now=TUE)
        wednesday = resolve_session(now=WED)
        assert status_of(monday) is SessionStatus.COMPLETED
        assert status_of(tuesday) is SessionStatus.COMPLETED
        assert complete_past_days(date(2026, 6, 3)) == []  # Wednesday is today
        assert status_of(wednesday) is SessionStatus.ACTIVE


def test_new_work_reactivates_an_auto_completed_session(app):
    with app.app_context():
        monday = resolve_session(now=MON)
        resolve_session(now=TUE)
        assert status_of(monday) is SessionStatus.COMPLETED
        # A scan or an upload sent to Monday's session by id goes through the resolver.
        assert resolve_session(monday, now=TUE) == monday
        assert status_of(monday) is SessionStatus.ACTIVE
        assert record_status(monday) == "active"


def test_new_work_counted_after_the_session_completed_reactivates_it(app):
    """The moment between the resolver's answer and the work's own transaction: the resolver
    said Monday's session was active (say at 23:59:59), then Tuesday's session was made and
    Monday's completed; the scan or upload counted into it afterwards makes it active again,
    under the row lock its transaction takes first. A frame of running work does not."""
    with app.app_context():
        monday = resolve_session(now=MON)
        assert resolve_session(now=MON) == monday  # the fast path: active, nothing written
        resolve_session(now=TUE)
        assert status_of(monday) is SessionStatus.COMPLETED

        assert bump_session_counters(monday, captures_count=1, valid_count=1)
        db.session.commit()
        assert status_of(monday) is SessionStatus.COMPLETED  # a frame reopens nothing

        assert bump_session_counters(monday, files_count=2)  # an upload request's files
        db.session.commit()
        assert status_of(monday) is SessionStatus.ACTIVE
        assert record_status(monday) == "active"

        assert complete_past_days(date(2026, 6, 2)) == [monday]
        add_scan(monday, ScanStatus.QUEUED)  # a scan start counts scans_count first
        assert status_of(monday) is SessionStatus.ACTIVE
        assert complete_past_days(date(2026, 6, 2)) == []  # and its scan is under way


def test_the_web_servers_start_completes_days_that_ended_while_it_was_off(app):
    now = datetime.now(UTC)
    with app.app_context():
        today = resolve_session(now=now)
        old = resolve_session(now=now - timedelta(days=3))  # made last: nothing completed it
        assert status_of(old) is SessionStatus.ACTIVE
    complete_past_days_at_startup(app)  # what runtime/web_server.py calls when it loads
    with app.app_context():
        assert status_of(old) is SessionStatus.COMPLETED
        assert status_of(today) is SessionStatus.ACTIVE


def test_years_of_past_days_complete_in_one_go(app, monkeypatch):
    """A station upgraded with years of active auto sessions: the first new day completes
    them all (each record rewritten, in several UPDATEs), and later days find nothing to do."""
    monkeypatch.setattr(day_end, "BATCH", 10)
    with app.app_context():
        first = MON - timedelta(days=400)
        ids = [resolve_session(now=first + timedelta(days=n)) for n in range(0, 400, 7)]
        db.session.execute(ScanSession.__table__.update().values(status=SessionStatus.ACTIVE))
        db.session.commit()
        resolve_session(now=MON)
        assert {status_of(i) for i in ids} == {SessionStatus.COMPLETED}
        assert len(ids) > 5 * day_end.BATCH
        assert {record_status(i) for i in ids} == {"completed"}
        assert complete_past_days(date(2026, 6, 1)) == []


def test_the_web_server_completes_past_days_when_it_loads(app, data_dir, database_url,
                                                          monkeypatch):
    """The wiring: what gunicorn's worker runs once at start (`scanner run`, `scanner web`)."""
    import socket

    from scanner_app.runtime.web_server import StationServer
    from tests.support import station_env, wait_until

    now = datetime.now(UTC)
    with app.app_context():
        resolve_session(now=now)
        old = resolve_session(now=now - timedelta(days=1))
        assert status_of(old) is SessionStatus.ACTIVE
    for name, value in station_env(data_dir, SCANNER_DATABASE_URL=database_url).items():
        monkeypatch.setenv(name, value)
    with socket.socket() as listener:
        loaded = StationServer(listener.fileno()).load()
    assert callable(loaded)

    def completed() -> bool:  # done in a thread of the loaded worker
        with app.app_context():
            return status_of(old) is SessionStatus.COMPLETED and (
                record_status(old) == "completed")

    wait_until(completed, 20, "yesterday's auto session completed by the web server's start")
