"""A station for the rig tests: the app in this process (API and pages through the test
client) and a real `scanner worker` subprocess (plus, where asked, the `scanner button`
daemon) on the mock rig, sharing one data dir, one database and a Redis server of this
folder's own (so no other test folder's workers ever see these jobs)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from hal.mock.platter import MockPlatter
from hal.settings import HalSettings
from scanner_app.config import load_settings
from scanner_app.rig import channel
from tests.conftest import build_app
from tests.support import (
    FAST,
    PROJECT_ROOT,
    api_client,
    cli,
    dispose,
    free_port,
    process_env,
    station_env,
    stop_processes,
    wait_until,
)


@pytest.fixture(scope="session")
def rig_redis_server(tmp_path_factory) -> Iterator[str]:
    """A private redis-server for tests/rig; yields its redis:// URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed; run 'make test' (it installs it).")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", "--dir", str(tmp_path_factory.mktemp("rig-redis"))],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        wait_until(lambda: _pings(client), 10, "the rig tests' redis-server to answer")
        yield url
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@pytest.fixture
def rig_redis(rig_redis_server: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(rig_redis_server)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


class RigStation:
    def __init__(self, tmp_path: Path, redis_url: str, database_url: str | None, **env: str):
        self.tmp_path = tmp_path
        self.data_dir = tmp_path / "data"
        self.data_dir.mkdir(exist_ok=True)
        extra = {"SCANNER_REDIS_URL": redis_url, **FAST, **env}
        database = {"SCANNER_DATABASE_URL": database_url} if database_url else {}
        self.env = process_env(self.data_dir, **extra, **database)
        self.app = build_app(self.data_dir, database_url, **extra)
        self.client = api_client(self.app, "rig tests")
        self.redis = redis.Redis.from_url(redis_url)
        self.hal: HalSettings = load_settings(
            env=station_env(self.data_dir, **extra, **database)).hal
        self.procs: dict[str, subprocess.Popen] = {}

    # --- processes -------------------------------------------------------------------
    def _spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(cli(*args), env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)
        log.close()
        self.procs[name] = proc
        return proc

    def start_worker(self) -> subprocess.Popen:
        proc = self._spawn("worker", "worker", "--queues", "hardware")
        wait_until(lambda: b"Listening on" in (self.tmp_path / "worker.log").read_bytes()
                   or proc.poll() is not None, 30, "the worker to listen")
        assert proc.poll() is None, self.log("worker")
        return proc

    def start_button(self) -> subprocess.Popen:
        proc = self._spawn("button", "button")
        pid_path = self.data_dir / "button.pid"
        wait_until(lambda: pid_path.exists() and pid_path.read_text().strip()
                   == str(proc.pid), 30, "the button daemon to write its pid")
        return proc

    def log(self, name: str) -> str:
        path = self.tmp_path / f"{name}.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else ""

    def close(self) -> None:
        stop_processes(*self.procs.values())
        self.redis.close()
        dispose(self.app)

    # --- the rig ---------------------------------------------------------------------
    def true_angle(self) -> float:
        return MockPlatter(self.hal.platter_file, detent_deg=self.hal.mock.detent_deg
                           ).true_angle()

    def motor_energised(self) -> bool:
        return MockPlatter(self.hal.platter_file).state().energised

    def post(self, path: str, body: dict[str, Any] | None = None):
        return self.client.post(f"/api/v1/rig{path}", json=body or {})

    def preview_job(self) -> str | None:
        raw = self.redis.get(channel.JOB_KEY)
        return raw.decode() if raw else None

    def wait_preview_gone(self, timeout: float = 10) -> None:
        """The preview job ended: its key dropped, its frame expired, the job finished."""
        started = time.monotonic()
        wait_until(lambda: self.preview_job() is None and
                   channel.latest_frame(self.redis)[1] is None, timeout,
                   f"the preview to end (worker log:\n{self.log('worker')})")
        self.preview_seconds = time.monotonic() - started


@pytest.fixture
def make_station(tmp_path: Path, rig_redis) -> Iterator[Callable[..., RigStation]]:
    url = rig_redis.connection_pool.connection_kwargs
    redis_url = f"redis://{url['host']}:{url['port']}/0"
    stations: list[RigStation] = []

    def make(database_url: str | None = None, **env: str) -> RigStation:
        station = RigStation(tmp_path, redis_url, database_url, **env)
        stations.append(station)
        return station

    yield make
    for station in stations:
        station.close()
