"""Fixtures for the runtime tests: the station's private Redis on the app's data dir; small
JPEGs and a session row to read. (The SQLite app and its API client are `sqlite_app` and
`sqlite_client` from tests/conftest.py.)"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from scanner_app.extensions import db
from scanner_app.models import ScanSession
from scanner_app.runtime.redis_server import PrivateRedis


def jpeg_bytes(size: tuple[int, int] = (64, 48), seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (seed * 37 % 256, 120, 110)).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def session_row(app, session_id: int) -> ScanSession:
    """The session's row as it is now, detached (readable outside the app context)."""
    with app.app_context():
        session = db.session.get(ScanSession, session_id)
        db.session.expunge(session)
        return session


@pytest.fixture
def private_redis(data_dir: Path) -> Iterator[PrivateRedis]:
    """The station's private Redis on <data_dir>/redis.sock (what `scanner run` starts)."""
    with PrivateRedis(data_dir) as server:
        yield server
