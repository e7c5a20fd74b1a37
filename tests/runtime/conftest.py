"""Fixtures for the runtime tests: a migrated app on a real SQLite file, an API client for it,
and the station's private Redis on the app's data dir."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from scanner_app.runtime.redis_server import PrivateRedis
from tests.conftest import build_app


def jpeg_bytes(size: tuple[int, int] = (64, 48), seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (seed * 37 % 256, 120, 110)).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


@pytest.fixture
def sqlite_app(data_dir: Path) -> Iterator:
    app = build_app(data_dir)
    yield app
    with app.app_context():
        from scanner_app.extensions import db

        db.engine.dispose()


@pytest.fixture
def key_client(sqlite_app):
    from scanner_app.services.users import create_api_key

    with sqlite_app.app_context():
        key = create_api_key("runtime-tests")
    client = sqlite_app.test_client()
    client.environ_base["HTTP_X_API_KEY"] = key
    return client


@pytest.fixture
def private_redis(data_dir: Path) -> Iterator[PrivateRedis]:
    """The station's private Redis on <data_dir>/redis.sock (what `scanner run` starts)."""
    with PrivateRedis(data_dir) as server:
        yield server
