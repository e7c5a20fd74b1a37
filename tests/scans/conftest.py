"""A station under test for scans: the app in this process (API via the test client) and
real `scanner worker` subprocesses, sharing one data dir, one database and one real Redis."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
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

REDIS_DB = 9  # a database of the shared test Redis for these tests alone, flushed per test


class Station:
    def __init__(self, tmp_path: Path, redis_url: str, database_url: str | None, **env: str):
        self.tmp_path = tmp_path
        self.data_dir = tmp_path / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.redis_url = redis_url
        extra = {"SCANNER_REDIS_URL": redis_url, **FAST, **env}
        database = {"SCANNER_DATABASE_URL": database_url} if database_url else {}
        self.env = process_env(self.data_dir, **extra, **database)
        self.app = build_app(self.data_dir, database_url, **extra)
        self.client = api_client(self.app, "scan tests")
        self.workers: list[subprocess.Popen] = []

    # --- processes ---------------------------------------------------------------------
    def start_worker(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.tmp_path / f"worker-{len(self.workers)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(cli("worker", *args), env=env or self.env,
                                stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)
        log.close()
        self.workers.append(proc)
        return proc

    def worker_logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:]
                         for p in sorted(self.tmp_path.glob("worker-*.log")))

    def stop_workers(self) -> None:
        stop_processes(*self.workers)

    # --- API ---------------------------------------------------------------------------
    def start_scan(self, **body: Any) -> dict:
        response = self.client.post("/api/v1/scans", json=body)
        assert response.status_code == 202, response.get_json()
        return response.get_json()["scan"]

    def scan(self, scan_id: int) -> dict:
        response = self.client.get(f"/api/v1/scans/{scan_id}")
        assert response.status_code == 200, response.get_json()
        return response.get_json()["scan"]

    def action(self, scan_id: int, what: str) -> dict:
        response = self.client.post(f"/api/v1/scans/{scan_id}/{what}")
        assert response.status_code == 202, response.get_json()
        return response.get_json()["scan"]

    def wait_for_scan(self, scan_id: int, check: Callable[[dict], bool], what: str,
                      timeout: float = 30) -> dict:
        seen: list[dict] = []

        def probe():
            scan = self.scan(scan_id)
            seen.append(scan)
            return scan if check(scan) else None

        try:
            return wait_until(probe, timeout, f"scan {scan_id} to be {what}")
        except AssertionError:
            print("last seen:", seen[-1] if seen else None)
            print(self.worker_logs())
            raise

    def wait_for_status(self, scan_id: int, status: str, timeout: float = 30) -> dict:
        return self.wait_for_scan(scan_id, lambda s: s["status"] == status, status, timeout)

    def session(self, session_id: int) -> dict:
        return self.client.get(f"/api/v1/sessions/{session_id}").get_json()["session"]

    def captures(self, session_id: int) -> list[dict]:
        body = self.client.get(f"/api/v1/sessions/{session_id}/captures").get_json()
        return body["captures"]

    # --- disk --------------------------------------------------------------------------
    def session_dir(self, session_id: int) -> Path:
        return self.data_dir / "sessions" / str(session_id)

    def frame_files(self, scan: dict) -> list[Path]:
        folder = self.session_dir(scan["session_id"]) / "images" / "scans" / str(scan["id"])
        # Files only: the frames' masks live in a masks/ folder beside them (issue 12).
        return sorted(p for p in folder.glob("*") if not p.is_dir()) if folder.exists() else []

    def metadata(self, scan: dict) -> dict:
        path = self.session_dir(scan["session_id"]) / "metadata" / "scans" / f"{scan['id']}.json"
        return json.loads(path.read_text())

    def fault(self, text: str | None) -> None:
        path = self.data_dir / "mock-fault"
        if text is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(text)

    def close(self) -> None:
        self.stop_workers()
        dispose(self.app)


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    url = redis_server.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def make_station(tmp_path: Path, redis_url: str) -> Iterator[Callable[..., Station]]:
    stations: list[Station] = []

    def make(database_url: str | None = None, **env: str) -> Station:
        station = Station(tmp_path, env.pop("redis_url", redis_url), database_url, **env)
        stations.append(station)
        return station

    yield make
    for station in stations:
        station.close()
