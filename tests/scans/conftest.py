"""A station under test for scans: the app in this process (API via the test client) and
real `scanner worker` subprocesses, sharing one data dir, one database and one real Redis."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import build_app, station_env

REDIS_DB = 9  # a database of the shared test Redis for these tests alone, flushed per test
POLL = 0.05
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# `scanner worker`, run from this checkout whatever the state of the installed package.
SCANNER = [sys.executable, "-c", "from scanner_app.cli import main; main()"]
# Fast mock rig: the quick profile's 0.2 s settle time dominates (about 0.3 s a frame).
FAST_RIG = {"SCANNER_MOCK_CAPTURE_SECONDS": "0.02", "SCANNER_MOCK_SECONDS_PER_REV": "1"}


def free_port() -> int:
    """A port nothing listens on (for "Redis is down")."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(POLL)


class Station:
    def __init__(self, tmp_path: Path, redis_url: str, database_url: str | None, **env: str):
        self.tmp_path = tmp_path
        self.data_dir = tmp_path / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.redis_url = redis_url
        extra = {"SCANNER_REDIS_URL": redis_url, **FAST_RIG, **env}
        if database_url:
            extra["SCANNER_DATABASE_URL"] = database_url
        self.env = {**os.environ, **station_env(self.data_dir, **extra),
                    "PYTHONPATH": str(PROJECT_ROOT)}
        self.app = build_app(self.data_dir, database_url, **{
            k: v for k, v in extra.items() if k != "SCANNER_DATABASE_URL"})
        from scanner_app.services.users import create_api_key

        with self.app.app_context():
            key = create_api_key("scan tests")
        self.client = self.app.test_client()
        self.client.environ_base["HTTP_X_API_KEY"] = key
        self.workers: list[subprocess.Popen] = []

    # --- processes ---------------------------------------------------------------------
    def start_worker(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.tmp_path / f"worker-{len(self.workers)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen([*SCANNER, "worker", *args], env=env or self.env,
                                stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)
        log.close()
        self.workers.append(proc)
        return proc

    def worker_logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:]
                         for p in sorted(self.tmp_path.glob("worker-*.log")))

    def stop_workers(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

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
        except pytest.fail.Exception:
            print("last seen:", seen[-1] if seen else None)
            print(self.worker_logs())
            raise

    def wait_for_status(self, scan_id: int, status: str, timeout: float = 30) -> dict:
        return self.wait_for_scan(scan_id, lambda s: s["status"] == status, status, timeout)

    def session(self, session_id: int) -> dict:
        return self.client.get(f"/api/v1/sessions/{session_id}").get_json()

    def captures(self, session_id: int) -> list[dict]:
        body = self.client.get(f"/api/v1/sessions/{session_id}/captures").get_json()
        return body["captures"]

    # --- disk --------------------------------------------------------------------------
    def session_dir(self, session_id: int) -> Path:
        return self.data_dir / "sessions" / str(session_id)

    def frame_files(self, scan: dict) -> list[Path]:
        folder = self.session_dir(scan["session_id"]) / "images" / "scans" / str(scan["id"])
        return sorted(folder.glob("*")) if folder.exists() else []

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
        from scanner_app.extensions import db

        with self.app.app_context():
            db.engine.dispose()


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
