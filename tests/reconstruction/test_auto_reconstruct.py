"""A profile with `auto_reconstruct = true`: when a real `hardware` worker completes its scan,
the scan run's after-completed hook (registered by the reconstruction slice) queues a model on
the processing queue. A plain profile's scan gets none."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from rq import Queue

from scanner_app.platform import queues
from tests.reconstruction.conftest import Station
from tests.support import PROJECT_ROOT


@pytest.fixture(scope="module")
def auto_station(tmp_path_factory, redis_url: str) -> Iterator[Station]:
    config = tmp_path_factory.mktemp("config")
    for shipped in (PROJECT_ROOT / "config").glob("*.toml"):
        if shipped.name != "local.toml":  # a developer's own overrides stay out of tests
            shutil.copy(shipped, config / shipped.name)
    (config / "local.toml").write_text(
        "[profiles.auto]\nframes = 6\nsettle_seconds = 0\nresolution = [640, 480]\n"
        "jpeg_quality = 85\nauto_reconstruct = true\n"
        "[profiles.plain]\nframes = 6\nsettle_seconds = 0\nresolution = [640, 480]\n"
        "jpeg_quality = 85\n")
    station = Station(tmp_path_factory.mktemp("auto-station"), redis_url,
                      SCANNER_CONFIG_DIR=str(config))
    station.start_worker("hardware")  # no processing worker: the model stays queued
    yield station
    station.close()


def _scan(station: Station, profile: str) -> dict:
    scan = station.post("/api/v1/scans", profile=profile)["scan"]
    return station.wait(f"/api/v1/scans/{scan['id']}", "scan",
                        lambda s: s["status"] in ("completed", "failed", "interrupted"),
                        f"the {profile} scan to end", timeout=120)


def test_a_completed_scan_of_an_auto_profile_gets_a_queued_reconstruction(auto_station,
                                                                          redis_url) -> None:
    plain = _scan(auto_station, "plain")
    assert plain["status"] == "completed", plain
    auto = _scan(auto_station, "auto")
    assert auto["status"] == "completed", auto

    # The hook runs right after the COMPLETED commit, in the same job: poll briefly.
    row = auto_station.wait(f"/api/v1/scans/{auto['id']}/reconstruction", "reconstruction",
                            lambda r: r is not None, "the automatic reconstruction", 20)
    assert row["status"] == "queued" and row["scan_id"] == auto["id"], row
    queue = Queue(queues.PROCESSING_QUEUE, connection=queues.redis_connection(
        auto_station.app.config["SCANNER_SETTINGS"]))
    assert f"reconstruction-{row['id']}" in queue.job_ids
    assert "queued automatically (profile auto)" in auto_station.worker_logs()

    # The plain profile's scan (completed first) has none.
    missing = auto_station.client.get(f"/api/v1/scans/{plain['id']}/reconstruction")
    assert missing.status_code == 404
