"""Race: completing past days while a scan is being started into yesterday's session.

The scan's transaction counts the scan (taking the session row's lock), inserts it and has not
committed when the completion starts; the completion must wait for it and then see the scan,
so the session stays active. On PostgreSQL a single UPDATE ... WHERE NOT EXISTS (scan) would
not: after waiting for the row it re-checks the row but not the subquery, whose snapshot is
older than the scan (READ COMMITTED). The last test shows that on the same interleaving, so
the harness is known to catch it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import event, select, text

from scanner_app.models import Scan, ScanSession, ScanStatus, SessionStatus
from scanner_app.models.transitions import transition_where
from scanner_app.platform.extensions import db
from scanner_app.sessions import day_end
from scanner_app.sessions.counters import bump_session_counters
from scanner_app.sessions.resolver import forget_known_dirs, resolve_session
from tests.support import wait_until

MON = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
TUESDAY = date(2026, 6, 2)


@pytest.fixture(autouse=True)
def _fresh_cache():
    forget_known_dirs()
    yield
    forget_known_dirs()


def naive_complete(today: date) -> list[int]:
    """One statement, no lock taken first: what the race would do to a simpler version."""
    done = transition_where(ScanSession, SessionStatus.COMPLETED, from_=SessionStatus.ACTIVE,
                            where=[*day_end._past_auto(today), *day_end._idle()])
    db.session.commit()
    return done


def race(app, complete: Callable[[date], list[int]]) -> tuple[list[int], SessionStatus, int]:
    """Start a scan into Monday's session in one thread, stop before its commit, run
    `complete` in another until it waits, then let the scan commit. Returns what `complete`
    completed, Monday's status afterwards, and the scan's id."""
    with app.app_context():
        monday = resolve_session(now=MON)
        postgres = db.engine.dialect.name == "postgresql"
    counted, go, completing_waits = threading.Event(), threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def start_scan() -> None:
        try:
            with app.app_context():
                assert bump_session_counters(monday, scans_count=1)  # the row lock, first
                scan = Scan(session_id=monday, status=ScanStatus.QUEUED, profile="quick",
                            frames_planned=4, source="api")
                db.session.add(scan)
                db.session.flush()
                outcome["scan"] = scan.id
                counted.set()
                assert go.wait(60)
                db.session.commit()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            outcome["start error"] = exc
            counted.set()

    def completer() -> None:
        me = threading.get_ident()

        def noticed(_conn, _cursor, statement, *_args) -> None:
            if threading.get_ident() == me and statement.lstrip().startswith("UPDATE"):
                completing_waits.set()  # SQLite: about to wait for the write lock

        try:
            with app.app_context():
                event.listen(db.engine, "before_cursor_execute", noticed)
                try:
                    outcome["completed"] = complete(TUESDAY)
                finally:
                    event.remove(db.engine, "before_cursor_execute", noticed)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            outcome["complete error"] = exc
            completing_waits.set()

    starter = threading.Thread(target=start_scan)
    starter.start()
    assert counted.wait(60)
    finisher = threading.Thread(target=completer)
    finisher.start()
    if postgres:
        with app.app_context():
            def waiting_on_a_lock() -> bool:
                found = db.session.scalar(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"))
                db.session.commit()
                return bool(found)
            wait_until(waiting_on_a_lock, 30, "the completion to wait for the scan's row lock")
    else:
        assert completing_waits.wait(30)
    go.set()
    starter.join(60)
    finisher.join(60)
    assert "start error" not in outcome, outcome
    assert "complete error" not in outcome, outcome
    with app.app_context():
        status = db.session.scalar(select(ScanSession.status).where(ScanSession.id == monday))
    return outcome["completed"], status, outcome["scan"]


def test_a_scan_being_started_keeps_its_session_active(app):
    completed, status, scan_id = race(app, day_end.complete_past_days)
    assert completed == []
    assert status is SessionStatus.ACTIVE
    with app.app_context():
        assert db.session.get(Scan, scan_id).status is ScanStatus.QUEUED


@pytest.mark.postgres
def test_the_harness_catches_a_completion_that_does_not_lock_first(pg_database_url, data_dir):
    from tests.conftest import build_app
    from tests.support import dispose

    app = build_app(data_dir, pg_database_url)
    try:
        completed, status, _scan = race(app, naive_complete)
    finally:
        dispose(app)
    assert status is SessionStatus.COMPLETED, "the naive version was expected to race"
    assert completed
