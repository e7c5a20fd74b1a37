"""`scanner run` as a real process: private Redis, web, scan and uploads workers and button
daemon, a scan through the API to the end, then Ctrl-C stops every part. (Restarts, give-up
and kill -9 are in test_supervision.py.)"""

from __future__ import annotations

import io
import json
import re
import signal
import stat
import zipfile
from pathlib import Path

import pytest

from tests.runtime.procs import http, pid_alive, upgrade_and_key
from tests.support import Proc, cli, free_port, process_env, wait_until


def _child_pids(proc: Proc) -> dict[str, int]:
    pids = {}
    for line in proc.lines:
        match = re.search(r"started the .*\(scanner (\w+)(?: --queues (\w+))?\), pid (\d+)",
                          line)
        if match:
            pids[match.group(2) or match.group(1)] = int(match.group(3))
    return pids


@pytest.fixture
def station_dir(tmp_path: Path) -> Path:
    path = tmp_path / "st"  # short: the Redis socket path must stay under 108 bytes
    path.mkdir()
    return path


def test_scanner_run_serves_scans_end_to_end_and_ctrl_c_stops_everything(station_dir):
    key = upgrade_and_key(station_dir)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    station = Proc(cli("run", "--port", str(port)), process_env(station_dir))
    try:
        wait_until(lambda: _healthz(base) == 200, 60, "/healthz to answer 200")
        sock = station_dir / "redis.sock"
        assert stat.S_ISSOCK(sock.stat().st_mode)
        redis_pid = int((station_dir / "redis.pid").read_text())
        station.wait_line("Button daemon ready")
        pids = _child_pids(station)
        # The processing worker starts when a model is queued (test_on_demand.py).
        assert set(pids) == {"web", "hardware", "uploads", "button"}

        status, _, body = http("POST", f"{base}/api/v1/scans", key, {"frames": 4})
        assert status == 202, body
        scan = _scan(body)
        final = wait_until(lambda: _finished(base, key, scan["id"]), 90, "the scan to finish")
        assert final["status"] == "completed", final
        assert final["frames_captured"] == 4
        session_id = final["session_id"]
        frames = sorted((station_dir / "sessions" / str(session_id) / "images" / "scans"
                         / str(scan["id"])).glob("*.jpg"))
        assert len(frames) == 4

        # The job wrote the scan's own ZIP at completion (atomically: it exists whole or not).
        scan_zip = (station_dir / "sessions" / str(session_id) / "exports"
                    / f"scan-{scan['id']}.zip")
        wait_until(scan_zip.exists, 30, "the scan's export ZIP")
        with zipfile.ZipFile(scan_zip) as archive:
            names = sorted(archive.namelist())
            assert names[-1] == f"metadata/scans/{scan['id']}.json"
            assert len(json.loads(archive.read(names[-1]))["frames"]) == 4
            frame_names = [n for n in names if n.startswith(f"images/scans/{scan['id']}/")
                           and n.count("/") == 3]  # the frames, not the masks/ beside them
            assert len(frame_names) == 4
            assert {archive.getinfo(n).compress_type for n in names if n.endswith(".jpg")} == {
                zipfile.ZIP_STORED}

        # The session ZIP streams through the real web server, frames stored as they are.
        status, headers, data = http("GET", f"{base}/api/v1/sessions/{session_id}/export.zip",
                                     key, timeout=30)
        assert status == 200
        assert headers["Content-Disposition"].startswith(
            f'attachment; filename="session-{session_id}-')
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            jpegs = [i for i in archive.infolist()
                     if i.filename.startswith(f"images/scans/{scan['id']}/")
                     and i.filename.endswith(".jpg")]  # masks/ holds a PNG per frame
            assert len(jpegs) == 4
            assert all(i.compress_type == zipfile.ZIP_STORED for i in jpegs)
            assert archive.read(jpegs[0].filename) == frames[0].read_bytes()

        # The RQ dashboard in the same app sees the private Redis.
        status, _, page = http("GET", f"{base}/rq/", key)
        assert status == 200 and b"Connection Error" not in page

        station.signal(signal.SIGINT)
        assert station.wait(60) == 0, station.output
    finally:
        station.kill()
    assert "stopped." in station.lines[-1]
    for name, pid in pids.items():
        assert not pid_alive(pid), f"{name} still runs"
    assert not pid_alive(redis_pid)
    assert not (station_dir / "redis.sock").exists()


def _healthz(base: str) -> int | None:
    try:
        return http("GET", f"{base}/healthz", timeout=2)[0]
    except OSError:
        return None


def _scan(body: bytes) -> dict:
    data = json.loads(body)
    return data.get("scan", data)


def _finished(base: str, key: str, scan_id: int) -> dict | None:
    status, _, body = http("GET", f"{base}/api/v1/scans/{scan_id}", key)
    assert status == 200, body
    scan = _scan(body)
    return scan if scan["status"] not in ("queued", "running", "paused") else None
