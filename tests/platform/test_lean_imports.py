"""What loads when (issue 15: start-up time and idle memory). Each check runs in a fresh
interpreter, or on a real `scanner worker` process, so a module-level import added anywhere
that brings Pillow into the web app, the rig's factory into every process that reads the
settings, or numpy/OpenCV into the idle scan worker fails here.

- The app factory loads no Pillow (only a web embed or a preview placeholder draws images)
  and no apispec/PyYAML (only /api/v1/openapi.json needs them).
- `import hal` (which scanner_app.config does, so every process) loads the settings only;
  the other names load on first use and are the same objects as before.
- The scan worker imports the scan job (for its stop request) but not the scan run: numpy
  and OpenCV load in the work-horse that scans, and a scan still completes.
- create_app pauses the garbage collector while it imports, and restores the caller's state.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest

from scanner_app.models import Scan
from scanner_app.platform.extensions import db
from tests.support import Proc, api_client, cli, process_env, wait_until

IMAGE_LIBRARIES = ("numpy", "cv2", "PIL")


def loaded_after(code: str, data_dir: Path, modules: tuple[str, ...]) -> list[str]:
    """Which of `modules` a fresh interpreter has imported after running `code`."""
    script = (f"import json, sys\n{code}\n"
              f"print('LOADED', json.dumps(sorted(m for m in {modules!r} if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", script], env=process_env(data_dir),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("LOADED "))
    return json.loads(line.removeprefix("LOADED "))


def test_the_app_factory_loads_no_image_library_nor_openapi_builder(data_dir):
    code = "from scanner_app import create_app\ncreate_app()"
    assert loaded_after(code, data_dir, (*IMAGE_LIBRARIES, "apispec", "yaml")) == []


def test_reading_the_settings_loads_only_the_hal_settings(data_dir):
    code = "from scanner_app.config import load_settings\nload_settings()"
    rig_modules = ("hal.factory", "hal.interfaces", "hal.maintenance", "hal.mock.platter")
    assert loaded_after(code, data_dir, ("hal.settings", *rig_modules)) == ["hal.settings"]


def test_hal_names_load_on_first_use():
    import hal
    from hal import factory, interfaces, maintenance, settings

    assert hal.load_rig is factory.load_rig
    assert hal.Rig is interfaces.Rig
    assert hal.safe_off is maintenance.safe_off
    assert hal.HalSettings is settings.HalSettings
    assert set(hal.__all__) <= set(dir(hal))
    with pytest.raises(AttributeError, match="no attribute 'load_everything'"):
        hal.load_everything  # noqa: B018 - the lookup is the test


def test_importing_the_scan_job_loads_no_image_library(data_dir):
    code = "import scanner_app.scans.job"
    assert loaded_after(code, data_dir, (*IMAGE_LIBRARIES, "scanner_app.scans.run")) == []


def test_create_app_restores_the_garbage_collector(data_dir):
    code = ("import gc\nfrom scanner_app import create_app\n"
            "gc.disable(); create_app(); assert not gc.isenabled()\n"
            "gc.enable(); create_app(); assert gc.isenabled()")
    loaded_after(code, data_dir, ())
    assert gc.isenabled()


def mapped_libraries(pid: int) -> set[str]:
    """The image libraries whose files a process has mapped (its loaded extension modules)."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {name for name in ("numpy", "cv2", "PIL") if f"/{name}/" in maps}


def pss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no Pss line for {pid}")


def test_the_idle_scan_worker_has_no_image_library_and_still_scans(sqlite_app, data_dir,
                                                                     private_redis):
    worker = Proc(cli("worker", "--queues", "hardware"), process_env(data_dir))
    try:
        worker.wait_line("Listening on hardware", 60)
        pid = worker.popen.pid
        assert mapped_libraries(pid) == set(), worker.output
        print(f"idle scan worker: PSS {pss_mb(pid):.1f} MB")

        answer = api_client(sqlite_app).post("/api/v1/scans", json={"frames": 3})
        assert answer.status_code == 202, answer.get_json()
        scan_id = answer.get_json()["scan"]["id"]

        def finished() -> Scan | None:
            with sqlite_app.app_context():
                scan = db.session.get(Scan, scan_id)
                db.session.expunge(scan)
            return scan if scan.status not in ("queued", "running") else None

        scan = wait_until(finished, 120, "the scan to finish")
        assert (scan.status, scan.frames_captured) == ("completed", 3), scan.error
        # The work-horse loaded them and is gone; the worker itself stays lean.
        assert mapped_libraries(pid) == set()
    finally:
        worker.kill()
