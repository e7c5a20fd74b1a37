"""`scanner run` supervising its parts (issue 10, findings 1, 2, 11 and issue 9's 7b), with real
processes: a fresh data dir is migrated on start; scans and uploads run in separate workers;
a killed worker takes its work-horse with it, the scan reads `interrupted`, the worker is
restarted and the scan resumes to completion with every frame exactly once; a killed Redis is
restarted with its data; a part that keeps failing stops the station with a sentence; a
`kill -9` of `scanner run` leaves no process of the station behind."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import time
from pathlib import Path

import pytest
from redis import Redis

from tests.runtime.procs import (
    descendants,
    http,
    parent_of,
    pid_alive,
    scan_status,
    station_pids,
)
from tests.support import Proc, cli, free_port, process_env, run_cli, wait_until
from tests.uploads.helpers import image_bytes, multipart_body

FRAMES = 40
# The scan's profile: 320x240 frames and a 0.1 s settle instead of the shipped default's
# 2028x1520 and 0.3 s, which made the scan (and its resume) most of the test's time; nothing
# here checks a picture. 40 frames still last about 6 s: the scan runs while an upload is
# processed and its worker is killed (3 to 5 frames were in at the kill).
PROFILE = {"frames": FRAMES, "settle_seconds": 0.1, "resolution": [320, 240],
           "jpeg_quality": 80}


def small_profile(base: str, key: str) -> str:
    status, _, body = http("PUT", f"{base}/api/v1/profiles/supervision", key, PROFILE)
    assert status in (200, 201), body
    return "supervision"


@pytest.fixture
def station_dir(tmp_path: Path) -> Path:
    path = tmp_path / "st"  # short: the Redis socket path must stay under 108 bytes
    path.mkdir()
    return path


def started_pids(proc: Proc) -> dict[str, int]:
    """The latest pid of each part, from the 'started ..., pid N' lines."""
    pids = {}
    for line in proc.lines:
        match = re.search(r"started the (web server|scan worker|uploads worker|start-button "
                          r"daemon) .*, pid (\d+)", line)
        if match:
            name = {"web server": "web", "scan worker": "worker", "uploads worker": "uploads",
                    "start-button daemon": "button"}[match.group(1)]
            pids[name] = int(match.group(2))
    return pids


def _comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def healthz(base: str) -> int | None:
    try:
        return http("GET", f"{base}/healthz", timeout=2)[0]
    except OSError:
        return None


def scan_of(base: str, key: str, scan_id: int) -> dict:
    status, _, body = http("GET", f"{base}/api/v1/scans/{scan_id}", key)
    assert status == 200, body
    data = json.loads(body)
    return data.get("scan", data)


def work_horse(worker_pid: int) -> int | None:
    """The RQ work-horse: the worker's child (it runs in a process group of its own)."""
    children = [p for p in descendants(worker_pid) if parent_of(p) == worker_pid]
    return children[0] if children else None


def start_station(station_dir: Path, port: int) -> Proc:
    station = Proc(cli("run", "--port", str(port)), process_env(station_dir))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: healthz(base) == 200, 90, "/healthz to answer 200")
    except AssertionError:
        station.kill()
        raise AssertionError(station.output) from None
    return station


def test_fresh_station_migrates_and_a_killed_worker_takes_its_horse_along(station_dir):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    station = start_station(station_dir, port)  # no `scanner db upgrade` before: finding 11
    try:
        assert "Traceback" not in station.output and "no such table" not in station.output
        assert station.count("database is up to date") == 1
        made = run_cli(station_dir, "apikey", "create", "supervision")
        assert made.returncode == 0, made.stderr
        key = made.stdout.split()[-1]
        # The button daemon starts a second after the others (supervisor.LATER_PARTS_DELAY).
        station.wait_line("started the start-button daemon", 30)
        pids = started_pids(station)
        assert set(pids) == {"web", "worker", "uploads", "button"}
        # Forked from `scanner run` (runtime/zygote.py), named for their part.
        assert _comm(pids["worker"]) == "scanner-worker"
        assert _comm(pids["uploads"]) == "scanner-uploads"
        assert parent_of(pids["worker"]) == station.popen.pid

        status, _, body = http("POST", f"{base}/api/v1/scans", key,
                               {"frames": FRAMES, "profile": small_profile(base, key)})
        assert status == 202, body
        scan_id = json.loads(body)["scan"]["id"]
        wait_until(lambda: scan_of(base, key, scan_id)["frames_captured"] >= 3, 60,
                   "the scan to take 3 frames")

        # Issue 9, 7b: an upload is processed by the uploads worker while the scan runs.
        upload = multipart_body([("a.jpg", image_bytes(seed=3))], boundary="supervisionB")
        status, _, body = _post_upload(base, key, upload)
        assert status == 201, body
        upload_id = json.loads(body)["uploads"][0]["id"]
        wait_until(lambda: _upload_status(base, key, upload_id) == "done", 30,
                   "the upload to be processed during the scan")
        assert scan_of(base, key, scan_id)["status"] == "running"

        # Finding 1: kill -9 the worker; its work-horse must die too, the scan read interrupted.
        worker = pids["worker"]
        horse = wait_until(lambda: work_horse(worker), 10, "the work-horse")
        os.kill(worker, signal.SIGKILL)
        wait_until(lambda: not pid_alive(horse), 15, "the work-horse to die with its worker")
        interrupted = wait_until(
            lambda: (s := scan_of(base, key, scan_id))["status"] == "interrupted" and s, 30,
            "the scan to read interrupted")
        assert interrupted["frames_captured"] < FRAMES

        # Finding 2: the worker is restarted (one line), the station keeps serving.
        station.wait_line("the scan worker (scanner worker --queues hardware) stopped "
                          "unexpectedly", 10)
        wait_until(lambda: started_pids(station)["worker"] != worker, 30, "a new scan worker")
        assert station.count("restarting it in") == 1
        status, _, body = http("POST", f"{base}/api/v1/scans/{scan_id}/resume", key, {})
        assert status == 202, body
        final = wait_until(
            lambda: (s := scan_of(base, key, scan_id))["status"] not in
            ("queued", "running", "paused", "interrupted") and s, 90, "the resumed scan")
        assert final["status"] == "completed", final
        _assert_each_frame_once(station_dir, final, FRAMES)
        # Finding 12: the job's log lines name their session and scan.
        station.wait_line(f"session={final['session_id']} scan={scan_id} job=", 10)

        # Finding 2: Redis killed: restarted, with what it held a second before.
        probe = Redis(unix_socket_path=str(station_dir / "redis.sock"))
        probe.set("supervision:probe", "kept")
        time.sleep(1.5)  # appendfsync everysec
        os.kill(int((station_dir / "redis.pid").read_text()), signal.SIGKILL)
        station.wait_line("the private Redis stopped unexpectedly", 10)
        station.wait_line("private Redis running again", 30)
        assert probe.get("supervision:probe") == b"kept"
        probe.close()
        wait_until(lambda: healthz(base) == 200, 60, "/healthz to be 200 again")

        everything = station_pids(station_dir)
        station.signal(signal.SIGINT)
        assert station.wait(60) == 0, station.output
    finally:
        station.kill()
    assert "stopped." in station.lines[-1]
    wait_until(lambda: not (everything & station_pids(station_dir)), 10,
               "every process of the station to end")


def test_kill_9_of_scanner_run_leaves_nothing_running(station_dir):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    station = start_station(station_dir, port)
    try:
        key = run_cli(station_dir, "apikey", "create", "k9").stdout.split()[-1]
        status, _, body = http("POST", f"{base}/api/v1/scans", key, {"frames": FRAMES})
        assert status == 202, body
        scan_id = json.loads(body)["scan"]["id"]
        wait_until(lambda: scan_of(base, key, scan_id)["frames_captured"] >= 2, 60,
                   "the scan to take 2 frames")
        pids = started_pids(station)
        horse = wait_until(lambda: work_horse(pids["worker"]), 10, "the work-horse")
        everything = station_pids(station_dir)
        assert horse in everything and len(everything) >= 6, everything
        station.signal(signal.SIGKILL)
        station.wait(10)
        wait_until(lambda: not station_pids(station_dir), 30,
                   "every process of the station to end after kill -9 of scanner run")
    finally:
        station.kill()
    # The scan the horse was running reads interrupted (the horse stopped it between frames,
    # or the next start reconciles it).
    assert scan_status(station_dir, scan_id) == "interrupted"


def test_a_part_that_keeps_failing_stops_the_station_with_a_sentence(station_dir):
    with socket.socket() as taken:  # the web server cannot bind: it exits every time
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        station = Proc(cli("run", "--port", str(port)), process_env(station_dir))
        try:
            code = station.wait(90)
        finally:
            station.kill()
    assert code == 1
    assert station.count("the web server (scanner web) stopped unexpectedly") == 4
    assert "the web server (scanner web) stopped 5 times within 60 s" in station.output
    assert not station_pids(station_dir)


def _post_upload(base: str, key: str, body: bytes):
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{base}/api/v1/uploads", data=body, method="POST")
    request.add_header("X-Api-Key", key)
    request.add_header("Content-Type", "multipart/form-data; boundary=supervisionB")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _upload_status(base: str, key: str, upload_id: int) -> str:
    status, _, body = http("GET", f"{base}/api/v1/uploads/{upload_id}", key)
    assert status == 200, body
    data = json.loads(body)
    return data.get("upload", data)["status"]


def _assert_each_frame_once(station_dir: Path, scan: dict, frames: int) -> None:
    folder = (station_dir / "sessions" / str(scan["session_id"]) / "images" / "scans"
              / str(scan["id"]))
    assert len(list(folder.glob("*.jpg"))) == frames
    meta = json.loads((station_dir / "sessions" / str(scan["session_id"]) / "metadata" / "scans"
                       / f"{scan['id']}.json").read_text())
    files = [frame["file"] for frame in meta["frames"]]
    assert len(files) == frames and len(set(files)) == frames, files
    assert scan["frames_captured"] == frames


def test_a_database_that_cannot_be_migrated_is_one_sentence_and_nothing_starts(station_dir):
    env = process_env(station_dir, SCANNER_DATABASE_URL="sqlite:////no-such-dir/x/scanner.db")
    station = Proc(cli("run", "--port", str(free_port())), env)
    try:
        code = station.wait(60)
    finally:
        station.kill()
    assert code == 1
    assert "Traceback" not in station.output and "sqlalchemy" not in station.output.lower()
    assert "The database could not be migrated, so nothing was started." in station.output
    assert "started the" not in station.output
    assert not (station_dir / "redis.sock").exists()
    assert "Traceback" in (station_dir / "migration-error.log").read_text()


def test_a_worker_started_while_redis_is_down_waits_for_it(station_dir):
    """What `scanner run` starts its workers with: Redis restarting (or an external one down
    for a while) is waited for, not a failure a second that would make the station give up."""
    from scanner_app.runtime.redis_server import PrivateRedis

    assert run_cli(station_dir, "db", "upgrade").returncode == 0
    worker = Proc(cli("worker", "--queues", "uploads", "--wait-for-redis", "30"),
                  process_env(station_dir))
    try:
        worker.wait_line("Waiting up to 30 s for the job queue (Redis)", 30)
        time.sleep(1)
        assert worker.popen.poll() is None
        with PrivateRedis(station_dir):
            worker.wait_line("Listening on uploads", 30)
    finally:
        worker.kill()
