"""A profile saved on the settings page is what a real scan worker takes (issue 14): the
frames' size, their number and the profile recorded in the scan's metadata come from the
database's profile, not config/scanner.toml's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from PIL import Image

from tests.scans.conftest import Station

REDIS_DB = 1  # shared with test_settings.py (never at the same time), flushed per test


@pytest.fixture
def station(tmp_path, database_url, redis_server) -> Iterator[Station]:
    url = redis_server.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    connection = redis.Redis.from_url(url)
    connection.flushdb()
    station = Station(tmp_path, url, database_url)
    yield station
    station.close()
    connection.flushdb()
    connection.close()


def test_a_scan_takes_the_profile_saved_in_the_database(station):
    saved = station.client.put("/api/v1/profiles/quick", json={
        "frames": 3, "settle_seconds": 0.0, "resolution": [320, 240], "jpeg_quality": 70})
    assert saved.status_code == 200, saved.get_json()
    station.start_worker("--queues", "hardware")
    scan = station.start_scan(profile="quick")
    assert scan["frames_planned"] == 3
    done = station.wait_for_status(scan["id"], "completed", timeout=60)
    frames = station.frame_files(done)
    assert len(frames) == 3
    for frame in frames:
        with Image.open(frame) as image:
            assert image.size == (320, 240), frame
    recorded = station.metadata(done)["profile"]
    assert recorded["resolution"] == [320, 240] and recorded["jpeg_quality"] == 70


def test_a_resumed_scan_keeps_the_profile_it_started_with(station):
    small = {"frames": 12, "settle_seconds": 0.0, "resolution": [320, 240], "jpeg_quality": 70}
    assert station.client.put("/api/v1/profiles/quick", json=small).status_code == 200
    station.start_worker("--queues", "hardware")
    scan = station.start_scan(profile="quick")
    station.wait_for_scan(scan["id"], lambda s: s["frames_captured"] >= 3, "3 frames in")
    station.fault("disk-full")
    station.wait_for_status(scan["id"], "interrupted", timeout=60)
    station.fault(None)
    # Edited while the scan waits to be resumed: the scan goes on as it started.
    station.client.put("/api/v1/profiles/quick", json={**small, "resolution": [640, 480]})
    station.action(scan["id"], "resume")
    done = station.wait_for_status(scan["id"], "completed", timeout=60)
    sizes = set()
    for frame in station.frame_files(done):
        with Image.open(frame) as image:
            sizes.add(image.size)
    assert sizes == {(320, 240)}
    assert station.metadata(done)["profile"]["resolution"] == [320, 240]
