"""The resolver's fast path (issue 15): once a session's folder is known, resolving it again
is one SELECT — no INSERT, no UPDATE, no filesystem call — on SQLite and PostgreSQL; and
whatever is not the plain case (no row for today, a completed session, a deleted one) still
goes through the upsert and the row lock."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, select, update

from scanner_app.models import ScanSession, SessionStatus
from scanner_app.platform.errors import NotFound
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import StorageManager, current_storage
from scanner_app.sessions.resolver import forget_known_dirs, resolve_session
from scanner_app.sessions.service import create_manual_session, delete_session

DAY = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


@contextlib.contextmanager
def statements() -> Iterator[list[str]]:
    """Every SQL statement the app's engine runs inside the block (first word, upper case)."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement.strip().split(None, 1)[0].upper())

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@contextlib.contextmanager
def no_filesystem(monkeypatch) -> Iterator[None]:
    """Fail on any directory creation or existence check of a session folder or record."""

    def refuse(*_args, **_kwargs):
        raise AssertionError("the fast path touched the filesystem")

    with monkeypatch.context() as patch:
        patch.setattr(StorageManager, "ensure_session_dir", refuse)
        patch.setattr(Path, "mkdir", refuse)
        patch.setattr(Path, "exists", refuse)
        patch.setattr(Path, "is_dir", refuse)
        yield


@pytest.fixture(autouse=True)
def _fresh_cache():
    forget_known_dirs()
    yield
    forget_known_dirs()


def test_a_known_auto_session_is_one_select_and_no_filesystem(app, monkeypatch):
    with app.app_context():
        first = resolve_session(now=DAY)  # creates the row and its folder
        second = resolve_session(now=DAY)  # slow path once more: it sees the folder complete
        assert first == second
        with statements() as seen, no_filesystem(monkeypatch):
            for _ in range(5):
                assert resolve_session(now=DAY) == first
        assert seen == ["SELECT"] * 5, seen
        assert len(db.session.scalars(select(ScanSession)).all()) == 1


def test_a_known_explicit_or_current_manual_session_is_one_select(app, monkeypatch):
    with app.app_context():
        manual = create_manual_session("Bench top", make_current=True).id
        assert resolve_session(now=DAY) == manual
        assert resolve_session(manual, now=DAY) == manual
        with statements() as seen, no_filesystem(monkeypatch):
            assert resolve_session(now=DAY) == manual
            assert resolve_session(manual, now=DAY) == manual
        assert seen == ["SELECT", "SELECT"], seen


def test_the_slow_path_writes_when_the_fast_path_would_be_wrong(app):
    """A completed session is reactivated; a new day gets its own auto session; with nothing
    known yet (a new process), the upsert runs."""
    with app.app_context():
        today = resolve_session(now=DAY)
        resolve_session(now=DAY)
        db.session.execute(update(ScanSession).where(ScanSession.id == today)
                           .values(status=SessionStatus.COMPLETED))
        db.session.commit()
        with statements() as seen:
            assert resolve_session(now=DAY) == today
        assert "INSERT" in seen, seen  # ON CONFLICT DO UPDATE reactivated it
        assert db.session.get(ScanSession, today).status == SessionStatus.ACTIVE

        tomorrow = resolve_session(now=DAY + timedelta(days=1))
        assert tomorrow != today

        forget_known_dirs()
        with statements() as seen:
            assert resolve_session(now=DAY) == today
        assert "INSERT" in seen or "UPDATE" in seen, seen


def test_a_deleted_session_is_not_resolved_from_memory(app):
    with app.app_context():
        manual = create_manual_session("Short lived", make_current=False).id
        resolve_session(manual, now=DAY)
        resolve_session(manual, now=DAY)
        delete_session(manual)
        with pytest.raises(NotFound):
            resolve_session(manual, now=DAY)
        assert not current_storage().session_dir(manual).exists()

        today = resolve_session(now=DAY)
        resolve_session(now=DAY)
        delete_session(today)
        again = resolve_session(now=DAY)  # a new auto session for the day, with its folder
        assert again != today
        assert current_storage().session_record_path(again).exists()
        assert not current_storage().session_dir(today).exists()


def test_a_folder_removed_behind_the_stations_back_comes_back_after_forgetting(app):
    """The cache trusts what this process saw; `forget_known_dirs()` (doctor's repair) makes
    the next resolution look at the disk again."""
    with app.app_context():
        today = resolve_session(now=DAY)
        resolve_session(now=DAY)
        root = current_storage().session_dir(today)
        shutil.rmtree(root)
        forget_known_dirs()
        assert resolve_session(now=DAY) == today
        assert (root / "images" / "uploads").is_dir()
        assert current_storage().session_record_path(today).exists()
