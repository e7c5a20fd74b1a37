"""Fixtures for the upload tests.

`client` (from tests/conftest.py) runs on SQLite and PostgreSQL; `sqlite_client` (also from
there) on SQLite only, for checks of files and names that do not depend on the database. Without
SCANNER_REDIS_URL the station's private Redis socket does not exist, so uploads are processed
in the request (the documented fallback) and a test can check the outcome right away; the
tests of the queue path give the app a real Redis and run a real `scanner worker`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from sqlalchemy import select

from scanner_app.models import Capture, ScanSession, Upload
from scanner_app.models.session import COUNTERS
from scanner_app.platform.extensions import db
from tests.conftest import build_app
from tests.support import api_client, cli, dispose, process_env


@pytest.fixture
def redis_conn(redis_server) -> Iterator[Redis]:
    conn = Redis.from_url(redis_server)
    for name in ("uploads", "hardware"):
        Queue(name, connection=conn).empty()  # the Redis is shared by the whole test run
    yield conn
    for name in ("uploads", "hardware"):
        Queue(name, connection=conn).empty()


@pytest.fixture
def queued_app(data_dir, database_url, redis_server, redis_conn):
    """An app with a real Redis: uploads are queued, and a real worker processes them."""
    app = build_app(data_dir, database_url, SCANNER_REDIS_URL=redis_server)
    app.config["TEST_DATABASE_URL"] = database_url
    yield app
    dispose(app)


@pytest.fixture
def queued_client(queued_app):
    return api_client(queued_app, "queue-tests")


def worker_command(app, data_dir: Path, redis_url: str, queues: str = "uploads"
                   ) -> tuple[list[str], dict[str, str]]:
    """`scanner worker --queues uploads --burst` (works the queue empty, then exits). The
    uploads worker runs jobs in its own process; with another queue too ("uploads,hardware")
    it forks a work-horse per job."""
    env = process_env(data_dir, SCANNER_DATABASE_URL=app.config["TEST_DATABASE_URL"],
                      SCANNER_REDIS_URL=redis_url)
    return cli("worker", "--queues", queues, "--burst"), env


def run_worker(app, data_dir: Path, redis_url: str) -> str:
    """Run a real burst worker on the uploads queue to its end; returns its output."""
    command, env = worker_command(app, data_dir, redis_url)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def counters(app, session_id: int) -> dict[str, int]:
    with app.app_context():
        session = db.session.get(ScanSession, session_id)
        assert session is not None, f"session {session_id} is gone"
        return {name: getattr(session, name) for name in COUNTERS if name != "scans_count"}


def counted(app, session_id: int) -> dict[str, int]:
    """What the rows say, to compare with the counters (tests may count rows; the app not)."""
    with app.app_context():
        captures = db.session.scalars(select(Capture).where(Capture.session_id == session_id))
        captures = list(captures)
        files = db.session.scalars(select(Upload).where(
            Upload.session_id == session_id, Upload.duplicate_of_id.is_(None))).all()
        return {
            "files_count": len(files),
            "captures_count": len(captures),
            "valid_count": sum(1 for c in captures if c.valid),
            "invalid_count": sum(1 for c in captures if not c.valid),
        }


def session_ids(app) -> list[int]:
    with app.app_context():
        return list(db.session.scalars(select(ScanSession.id).order_by(ScanSession.id)))


def captures_of(app, upload_id: int) -> list[dict]:
    with app.app_context():
        rows = db.session.scalars(select(Capture).where(Capture.upload_id == upload_id)
                                  .order_by(Capture.id))
        return [c.to_dict() for c in rows]


def error_of(response) -> tuple[str, str]:
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    message = body["error"]["message"]
    assert message.endswith("."), message  # a sentence for a person
    return body["error"]["code"], message
