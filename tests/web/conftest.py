"""Fixtures for the browser UI: a migrated station app on a real SQLite file with a signed-in
test client, and helpers to put rows and files in place the way the jobs would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from scanner_app.models import Capture, Scan, Upload, User
from scanner_app.platform.clock import utcnow
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import current_storage
from scanner_app.sessions import service as session_service
from scanner_app.sessions.counters import bump_session_counters
from tests.conftest import build_app
from tests.support import jpeg_bytes, session_row  # noqa: F401 - re-exported to the web tests

PASSWORD = "correct horse battery"
HX = {"HX-Request": "true"}


def make_web_app(data_dir: Path, **env: str):
    # The UI needs no PostgreSQL: it only calls services, which the sessions tests run on both.
    return build_app(data_dir, **env)


@pytest.fixture
def web_app(data_dir: Path) -> Iterator:
    app = make_web_app(data_dir)
    yield app
    with app.app_context():
        db.engine.dispose()


def sign_in(app, name: str = "admin"):
    """A login made the way the station stores it, then signed in through the real form.
    The hash uses few PBKDF2 rounds: the default scrypt costs ~0.2 s per hash, twice per
    test, and hashing strength is not what these tests are about (tests/sessions covers
    users.create_user and the /setup form does too, in test_pages and the browser test)."""
    with app.app_context():
        if db.session.scalar(select(User.id).where(User.name == name)) is None:
            db.session.add(User(name=name, is_admin=True, password_hash=generate_password_hash(
                PASSWORD, method="pbkdf2:sha256:1000")))
            db.session.commit()
    client = app.test_client()
    answer = client.post("/login", data={"name": name, "password": PASSWORD})
    assert answer.status_code == 302, answer.data
    return client


@pytest.fixture
def browser(web_app):
    """A test client signed in with a login (cookie), like a person's browser."""
    return sign_in(web_app)


def add_session(app, name: str, make_current: bool = False) -> int:
    with app.app_context():
        return session_service.create_manual_session(name, make_current=make_current).id


def add_scan(app, session_id: int, status: str, *, captured: int = 2, planned: int = 12,
             angle: float | None = 60.0) -> int:
    """A Scan row as the job leaves it; an active one has a fresh heartbeat (alive)."""
    with app.app_context():
        now = utcnow()
        scan = Scan(session_id=session_id, status=status, profile="quick",
                    frames_planned=planned, frames_captured=captured, current_angle=angle,
                    source="web", heartbeat_at=now, started_at=now,
                    finished_at=None if status in ("queued", "running", "paused") else now)
        db.session.add(scan)
        db.session.commit()
        return scan.id


def add_capture(app, session_id: int, relpath: str, *, valid: bool = True, data: bytes | None
                = None, thumbnail: bytes | None = None, angle: float | None = None,
                reason: str | None = None) -> int:
    """A capture row plus its file (and thumbnail) inside the session directory."""
    with app.app_context():
        root = current_storage().ensure_session_dir(session_id)
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if data is not None else jpeg_bytes())
        capture = Capture(session_id=session_id, path=relpath, valid=valid, angle_deg=angle,
                          reason=reason, width=64 if valid else None,
                          height=48 if valid else None)
        db.session.add(capture)
        # Counted in the session as the jobs count it: captures pages come from the counters.
        bump_session_counters(session_id, captures_count=1, valid_count=int(valid),
                              invalid_count=int(not valid))
        db.session.commit()
        if thumbnail is not None:
            thumb = root / "metadata" / "thumbnails" / f"{capture.id}.jpg"
            thumb.parent.mkdir(parents=True, exist_ok=True)
            thumb.write_bytes(thumbnail)
        return capture.id


def add_upload(app, session_id: int, status: str, filename: str = "photo.jpg") -> int:
    with app.app_context():
        upload = Upload(session_id=session_id, filename=filename, stored_name=filename,
                        size=1234, status=status)
        db.session.add(upload)
        db.session.commit()
        return upload.id


@pytest.fixture(scope="module")
def chromium():
    """Debian's chromium through Playwright; never skipped in CI."""
    from tests.conftest import IN_CI
    from tests.web.live_station import CHROMIUM_ARGS, chromium_path

    path = chromium_path()
    if path is None:
        reason = ("Debian's chromium is not installed at /usr/bin/chromium; "
                  "run 'bash scripts/test-deps.sh' (make test does).")
        if IN_CI:
            pytest.fail(reason + " CI must run the browser test.")
        print(f"\nSKIP: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()

