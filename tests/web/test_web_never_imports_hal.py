"""The web process never touches hardware (issue 14): `scanner web` (real gunicorn, its
worker process) serves every page that shows or steers the rig (controls, preview, station,
settings, scans) and the API, and afterwards no hardware driver was imported in any of its
processes: no hal.pi module, no picamera2, libcamera, lgpio, gpiozero or RPi, and no such
shared library mapped.

How it is seen: a sitecustomize module on the processes' PYTHONPATH puts an import hook at
the front of sys.meta_path that appends "<pid> <module>" to a log for every import, in the
gunicorn master and (inherited over fork) its worker alike. The control test proves the
hook records a driver import when one happens."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import redis

from tests.runtime.procs import http, upgrade_and_key
from tests.support import (
    PROJECT_ROOT,
    cli,
    free_port,
    process_env,
    start_process,
    wait_until,
)

HOOK = '''
import os
import sys

_LOG = os.environ.get("IMPORT_LOG_FOR_TESTS")


class _ImportRecorder:
    """Records every import (then lets the normal finders find it)."""

    def find_spec(self, name, path=None, target=None):
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(f"{os.getpid()} {name}\\n")
        return None


if _LOG:
    sys.meta_path.insert(0, _ImportRecorder())
'''
REDIS_DB = 3  # a database of the shared test Redis for this station alone, flushed per test
# Driver modules (and what they pull in) that only the worker and the button daemon may load.
FORBIDDEN = re.compile(r"^(hal\.pi(\..*)?|picamera2(\..*)?|libcamera(\..*)?|lgpio(\..*)?|"
                       r"gpiozero(\..*)?|RPi(\..*)?|pigpio(\..*)?|spidev|smbus2?)$")
FORBIDDEN_LIBRARIES = re.compile(r"lib(camera|lgpio|pigpio|gpiod)[^/]*\.so")
SMALL_PROFILE = {"frames": 2, "settle_seconds": 0.1, "resolution": [320, 240], "jpeg_quality": 80}


@pytest.fixture
def hook_env(data_dir: Path, tmp_path: Path):
    hook_dir = tmp_path / "hook"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(HOOK)
    log = tmp_path / "imports.log"

    def env(**extra: str) -> dict[str, str]:
        values = process_env(data_dir, **extra)
        values["PYTHONPATH"] = f"{hook_dir}{os.pathsep}{PROJECT_ROOT}"
        values["IMPORT_LOG_FOR_TESTS"] = str(log)
        return values

    return env, log


def _imports(log: Path) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        pid, _, name = line.partition(" ")
        found.setdefault(int(pid), set()).add(name)
    return found


def test_the_hook_sees_a_driver_import(hook_env):
    """Control: a process that does import a driver module is caught."""
    env, log = hook_env
    done = subprocess.run([sys.executable, "-c", "import hal.pi"], env=env(), timeout=60,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    names = set().union(*_imports(log).values())
    assert {n for n in names if FORBIDDEN.match(n)} == {"hal.pi"}


def _read_some(url: str, key: str, limit: int = 4096) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"X-Api-Key": key})
    with urllib.request.urlopen(request, timeout=15) as response:
        return response.status, response.read(limit)  # then hang up, as a closed tab does


@pytest.mark.parametrize("driver", ["mock", "pi"])
def test_scanner_web_serves_the_rig_pages_without_importing_a_driver(
        data_dir, hook_env, redis_server, driver):
    env, log = hook_env
    key = upgrade_and_key(data_dir)
    log.unlink(missing_ok=True)  # only the station's imports from here
    port = free_port()
    redis_url = redis_server.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    redis.Redis.from_url(redis_url).flushdb()
    station = env(SCANNER_HAL=driver, SCANNER_REDIS_URL=redis_url)
    # A real worker owns the rig, so controls and the preview are carried out (mock), or
    # fail in the worker (pi, on a machine without the hardware): either way not in the web.
    worker = start_process(cli("worker", "--queues", "hardware"), station, ready="Listening on")
    web = start_process(cli("web", "--port", str(port)), station,
                        ready="Scanning station web UI on")
    base = f"http://127.0.0.1:{port}"
    try:
        web_pids = {web.popen.pid, int(re.search(r"Booting worker with pid: (\d+)",
                                                 web.wait_line("Booting worker with pid"))[1])}
        # Small frames: the shipped default profile's 2028x1520 ones made the scan most of
        # the test's time, and what the web imports does not depend on a frame's size.
        status, _, body = http("PUT", f"{base}/api/v1/profiles/small", key, SMALL_PROFILE)
        assert status in (200, 201), body
        status, _, body = http("POST", f"{base}/api/v1/scans", key,
                               {"frames": 2, "profile": "small"})
        assert status == 202, body
        scan_id = int(re.search(rb'"id":\s*(\d+)', body)[1])
        wait_until(lambda: b'"status":"completed"' in http(
            "GET", f"{base}/api/v1/scans/{scan_id}", key)[2].replace(b" ", b"")
            or driver == "pi", 60, "the scan to complete")
        for path in ("/", "/rig", "/rig/state", "/station", "/settings", "/sessions",
                     f"/scans/{scan_id}", f"/scans/{scan_id}/progress", "/healthz",
                     "/api/v1/rig", "/api/v1/profiles", "/api/v1/station",
                     "/api/v1/openapi.json", "/station/preview.jpg"):
            status, _, body = http("GET", base + path, key, timeout=60)
            assert status < 500 or path == "/healthz", (path, status, body[:300])
        status, _, body = http("POST", f"{base}/api/v1/rig/turn", key, {"to": 90}, timeout=120)
        assert status == 200 if driver == "mock" else status >= 400, body
        status, first = _read_some(f"{base}/station/preview.mjpg", key)
        assert status == 200 and first.startswith(b"--")
        maps = {pid: Path(f"/proc/{pid}/maps").read_text() for pid in web_pids}
    finally:
        web.kill()
        worker.kill()

    libraries = {pid: sorted(set(FORBIDDEN_LIBRARIES.findall(text)))
                 for pid, text in maps.items()}
    assert not any(libraries.values()), f"the web mapped hardware libraries: {libraries}"
    imported = _imports(log)
    assert web_pids <= set(imported), "the import hook recorded nothing in a web process"
    served = set().union(*(imported[pid] for pid in web_pids))
    assert {"scanner_app.rig.views", "scanner_app.station.station_page"} <= served
    forbidden = {pid: sorted(n for n in imported[pid] if FORBIDDEN.match(n))
                 for pid in web_pids}
    assert not any(forbidden.values()), f"hardware drivers imported by the web: {forbidden}"
    # The rig's own process did load its driver: the hook sees drivers where they are.
    others = set().union(*(names for pid, names in imported.items() if pid not in web_pids))
    assert f"hal.{driver}.rig" in others
