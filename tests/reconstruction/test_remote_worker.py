"""A processing worker on "another computer": a real station (`scanner web` on a TCP port and
its hardware worker, Redis over TCP) and a `scanner worker --queues processing --station URL
--api-key KEY` process with its OWN data dir and no database URL of the station, reaching it
only over TCP (its Redis and its HTTP API). A completed scan is reconstructed remotely and the
outputs land on the station; cancel stops the remote job; a remote worker killed mid-job is
marked interrupted by the station (stale heartbeat) and the model can be built again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis

from tests.support import FAST, PROJECT_ROOT, cli, process_env, stop_processes, wait_until
from tests.web.live_station import LiveStation

REDIS_DB = 12  # these tests' jobs are for these tests' workers alone
REMOTE_ENV = {"SCANNER_RECONSTRUCTION_REFINE": "0"}


class Remote:
    """The other computer: its own data dir, the station's Redis URL, nothing else shared."""

    def __init__(self, root: Path, station: LiveStation, key: str):
        self.root, self.station, self.key = root, station, key
        self.data_dir = root / "remote-data"
        self.data_dir.mkdir(exist_ok=True)
        self.env = process_env(self.data_dir, SCANNER_REDIS_URL=station.env["SCANNER_REDIS_URL"],
                               **REMOTE_ENV)
        assert "SCANNER_DATABASE_URL" not in self.env
        self.proc: subprocess.Popen | None = None

    def start(self, *extra: str) -> subprocess.Popen:
        log = open(self.root / "remote.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cli("worker", "--queues", "processing", "--station", self.station.url,
                "--api-key", self.key, *extra),
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT,
            start_new_session=True)
        log.close()
        return self.proc

    def log(self) -> str:
        path = self.root / "remote.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


@pytest.fixture(scope="module")
def station(tmp_path_factory, redis_server):
    url = redis_server.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    assert url.startswith("redis://127.0.0.1:")  # TCP, as a second computer would use
    connection = redis.Redis.from_url(url)
    connection.flushdb()
    data_dir = tmp_path_factory.mktemp("remote-station") / "data"
    data_dir.mkdir()
    live = LiveStation(data_dir, url, SCANNER_TILT="servo", **FAST)
    try:
        live.start()
        yield live
    finally:
        live.stop()
        connection.flushdb()
        connection.close()


def _api(station, key: str | None, method: str, path: str, body=None,
         raw: bytes | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["X-Api-Key"] = key
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(station.url + path, method=method, headers=headers,
                                     data=data)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture(scope="module")
def setup(station, tmp_path_factory):
    key = station.create_api_key("desktop")
    status, scan = _api(station, key, "POST", "/api/v1/scans",
                        {"profile": "quick", "rings": [{"elevation_deg": 10, "frames": 8},
                                                       {"elevation_deg": 35, "frames": 8}]})
    assert status == 202, scan

    def ended():
        _, body = _api(station, key, "GET", f"/api/v1/scans/{scan['scan']['id']}")
        body = body.get("scan") or body
        return body if body["status"] in ("completed", "failed", "interrupted") else None

    done = wait_until(ended, 120, "the scan to end", interval=0.2)
    assert done["status"] == "completed", (done, station.log_text("worker"))
    remote = Remote(tmp_path_factory.mktemp("desktop"), station, key)
    yield {"key": key, "scan": done, "remote": remote}
    if remote.proc is not None:
        stop_processes(remote.proc)


def _recon(station, key, rid: int) -> dict:
    status, body = _api(station, key, "GET", f"/api/v1/reconstructions/{rid}")
    assert status == 200, body
    return body["reconstruction"]


def _wait(station, key, rid: int, check, what: str, remote: Remote, timeout: float = 120):
    seen = []

    def probe():
        row = _recon(station, key, rid)
        seen.append(row)
        return row if check(row) else None

    try:
        return wait_until(probe, timeout, what, interval=0.3)
    except AssertionError:
        print("last seen:", seen[-1] if seen else None)
        print(remote.log())
        raise


def _model_dir(station, scan) -> Path:
    return (station.data_dir / "sessions" / str(scan["session_id"]) / "exports"
            / f"scan-{scan['id']}-model")


def test_a_remote_worker_builds_the_model_and_the_outputs_land_on_the_station(station,
                                                                             setup) -> None:
    key, scan, remote = setup["key"], setup["scan"], setup["remote"]
    remote.start()
    status, body = _api(station, key, "POST", f"/api/v1/scans/{scan['id']}/reconstruction", {})
    assert status == 202, body
    rid = body["reconstruction"]["id"]
    stages: list[str] = []

    def done(row):
        stages.append(row["stage"])
        return row["status"] in ("completed", "failed", "interrupted")

    row = _wait(station, key, rid, done, "the remote model", remote)
    assert row["status"] == "completed", (row, remote.log())
    assert "visual hull" in stages or "visual hull" in row["metrics"].get("seconds", {})
    assert "model.glb" in row["outputs"]
    model = _model_dir(station, scan) / "model.glb"
    assert model.read_bytes()[:4] == b"glTF"
    request = urllib.request.Request(station.url + row["outputs"]["model.glb"],
                                     headers={"X-Api-Key": key})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.read() == model.read_bytes()
    # Nothing of the scan stays on the other computer, and nothing half-made on the station.
    assert not list((remote.data_dir / "processing").glob("remote-*"))
    assert not list(remote.data_dir.rglob("*.jpg"))
    assert not list(model.parent.parent.glob(".*remote*"))
    assert "Processing for the station at" in remote.log()


def test_the_station_refuses_workers_without_a_key_and_bad_outputs(station, setup) -> None:
    key, scan = setup["key"], setup["scan"]
    status, body = _api(station, None, "POST", "/api/v1/reconstructions/1/progress", {})
    assert status == 401, body
    # A finished reconstruction takes no more reports, names are checked before anything.
    status, body = _api(station, key, "POST", "/api/v1/reconstructions/1/progress",
                        {"percent": 50})
    assert status == 409 and "stop working on it" in body["error"]["message"], body
    status, body = _api(station, key, "PUT", "/api/v1/reconstructions/1/outputs/run.sh",
                        raw=b"#!/bin/sh")
    assert status == 400 and body["error"]["code"] == "bad_output_name", body
    status, body = _api(station, key, "POST", "/api/v1/reconstructions/1/claim", {})
    assert status == 409, body
    assert (_model_dir(station, scan) / "model.glb").is_file()


def test_cancel_stops_the_remote_job_and_keeps_the_last_model(station, setup) -> None:
    key, scan, remote = setup["key"], setup["scan"], setup["remote"]
    model = _model_dir(station, scan) / "model.glb"
    before = model.read_bytes()
    status, body = _api(station, key, "POST", f"/api/v1/scans/{scan['id']}/reconstruction", {})
    rid = body["reconstruction"]["id"]
    _wait(station, key, rid, lambda r: r["status"] == "running" and r["percent"] > 0,
          "the remote job to be under way", remote)
    status, body = _api(station, key, "POST", f"/api/v1/reconstructions/{rid}/cancel", {})
    assert status == 202 and body["reconstruction"]["status"] == "cancelled", body
    wait_until(lambda: f"Reconstruction {rid} stopped" in remote.log(), 60,
               "the remote worker to stop the cancelled job")
    wait_until(lambda: not list((remote.data_dir / "processing").glob(f"remote-{rid}")), 30,
               "the remote work folder to go")
    assert _recon(station, key, rid)["status"] == "cancelled"
    assert model.read_bytes() == before


def test_a_killed_remote_worker_is_marked_interrupted_and_the_model_built_again(
        station, setup) -> None:
    key, scan, remote = setup["key"], setup["scan"], setup["remote"]
    status, body = _api(station, key, "POST", f"/api/v1/scans/{scan['id']}/reconstruction", {})
    rid = body["reconstruction"]["id"]
    _wait(station, key, rid, lambda r: r["status"] == "running" and r["percent"] > 0,
          "the remote job to be under way", remote)
    os.killpg(remote.proc.pid, signal.SIGKILL)  # the desktop loses power: worker and job
    remote.proc.wait(10)
    started = time.monotonic()
    row = _wait(station, key, rid, lambda r: r["status"] != "running",
                "the station to notice the dead worker", remote, timeout=90)
    assert row["status"] == "interrupted", row
    assert "stopped answering" in row["error"] and "Start it again" in row["error"], row
    assert time.monotonic() - started >= 10  # by the stale heartbeat, not a report

    remote.start()
    status, body = _api(station, key, "POST", f"/api/v1/scans/{scan['id']}/reconstruction", {})
    assert status == 202, body
    again = body["reconstruction"]["id"]
    row = _wait(station, key, again, lambda r: r["status"] in ("completed", "failed"),
                "the model built again", remote)
    assert row["status"] == "completed", (row, remote.log())
