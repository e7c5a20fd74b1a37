"""A station for reconstruction tests: the app in this process (API through the test client),
real `scanner worker` processes (the rig's `hardware` queue to take a real mock scan, the
`processing` queue to build its model), one data dir, one database, one real Redis."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import build_app
from tests.support import (
    FAST,
    PROJECT_ROOT,
    api_client,
    cli,
    dispose,
    process_env,
    stop_processes,
    wait_until,
)

REDIS_DB = 10  # a database of the shared test Redis for these tests alone


class Station:
    def __init__(self, root: Path, redis_url: str, **env: str):
        self.root = root
        self.data_dir = root / "data"
        self.data_dir.mkdir(exist_ok=True)
        extra = {"SCANNER_REDIS_URL": redis_url, **FAST, **env}
        self.env = process_env(self.data_dir, **extra)
        self.app = build_app(self.data_dir, None, **extra)
        self.client = api_client(self.app, "reconstruction tests")
        self.workers: dict[str, subprocess.Popen] = {}

    def start_worker(self, queue: str) -> subprocess.Popen:
        log = open(self.root / f"worker-{queue}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(cli("worker", "--queues", queue), env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)
        log.close()
        self.workers[queue] = proc
        return proc

    def worker_logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:]
                         for p in sorted(self.root.glob("worker-*.log")))

    def post(self, url: str, status: int = 202, **body: Any) -> dict:
        response = self.client.post(url, json=body)
        assert response.status_code == status, response.get_json()
        return response.get_json()

    def get(self, url: str, status: int = 200) -> dict:
        response = self.client.get(url)
        assert response.status_code == status, response.get_json()
        return response.get_json()

    def wait(self, url: str, key: str, check, what: str, timeout: float = 60) -> dict:
        seen: list[dict] = []

        def probe():
            value = self.get(url)[key]
            seen.append(value)
            return value if check(value) else None

        try:
            return wait_until(probe, timeout, what, interval=0.2)
        except AssertionError:
            print("last seen:", seen[-1] if seen else None)
            print(self.worker_logs())
            raise

    def close(self) -> None:
        stop_processes(*self.workers.values())
        dispose(self.app)


@pytest.fixture(scope="module")
def redis_url(redis_server: str) -> Iterator[str]:
    url = redis_server.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture(scope="module")
def station(tmp_path_factory, redis_url: str) -> Iterator[Station]:
    # Hull only in the worker tests: refinement has its own tests and the benchmark.
    station = Station(tmp_path_factory.mktemp("station"), redis_url,
                      SCANNER_RECONSTRUCTION_REFINE="0", SCANNER_TILT="servo")
    yield station
    station.close()


@pytest.fixture(scope="module")
def completed_scan(station: Station) -> dict:
    """A real 2-ring scan of the mock rig (8 frames a ring), taken by a `hardware` worker:
    frames, masks and known poses exactly as the scan job records them."""
    station.start_worker("hardware")
    body = station.post("/api/v1/scans", profile="quick",
                        rings=[{"elevation_deg": 10, "frames": 8},
                               {"elevation_deg": 35, "frames": 8}])
    scan = body["scan"]
    return station.wait(f"/api/v1/scans/{scan['id']}", "scan",
                        lambda s: s["status"] in ("completed", "failed", "interrupted"),
                        "the scan to end", timeout=120)
