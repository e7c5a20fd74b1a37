"""The calibration page's job, run by a real `scanner worker` on the mock rig: it saves the
rig's calibration with the issue's numbers, is refused while a scan runs, says in one sentence
when the board is not found, and reads failed when its work-horse is killed."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest

from hal.calibration import load_calibration
from hal.mock.scene import DEFAULT_GEOMETRY, DEFAULT_INTRINSICS
from scanner_app.scans.calibration_run import run_path
from tests.support import wait_until
from tests.web.conftest import HX, sign_in


def run_state(data_dir: Path) -> dict:
    path = run_path(data_dir)
    return json.loads(path.read_text()) if path.exists() else {}


def poll_panel(browser, station, status: str, timeout: float) -> str:
    """Poll the panel the way the page does until the run reads `status`; returns its HTML."""
    def probe() -> str | None:
        html = browser.get("/calibration/run", headers=HX).get_data(as_text=True)
        return html if f'data-status="{status}"' in html else None

    try:
        return wait_until(probe, timeout, f"the calibration to be {status}", interval=0.2)
    except AssertionError:
        print(run_state(station.data_dir), station.worker_logs())
        raise


def test_the_page_calibrates_the_mock_rig_through_the_worker(make_station) -> None:
    station = make_station(SCANNER_MOCK_RESOLUTION="1280x960",
                           SCANNER_MOCK_CAPTURE_SECONDS="0.3")
    browser = sign_in(station.app)
    station.start_worker()

    # While a scan runs the rig is its own: a calibration is refused with a sentence.
    scan = station.start_scan(profile="quick", frames=30)
    station.wait_for_status(scan["id"], "running")
    refused = browser.post("/calibration", data={"views": "6"}, headers=HX)
    assert refused.status_code == 409, refused.data
    assert (f"Scan {scan['id']} is running and a calibration needs the rig to itself"
            in refused.get_data(as_text=True))
    assert not run_path(station.data_dir).exists()
    station.action(scan["id"], "cancel")
    station.wait_for_status(scan["id"], "cancelled")

    started = browser.post("/calibration", data={"views": "6"}, headers=HX)
    assert started.status_code == 200, started.data
    html = started.get_data(as_text=True)
    assert 'hx-get="/calibration/run" hx-trigger="every 1s"' in html
    assert ">Calibrate</button>" not in html  # no second run while this one is under way

    # Progress as the page shows it: photos done of 6, never more, never going back.
    seen: list[int] = []

    def progressed() -> str | None:
        html = browser.get("/calibration/run", headers=HX).get_data(as_text=True)
        found = re.search(r'class="bar-percent">(\d+) / 6<', html)
        if found:
            seen.append(int(found.group(1)))
        return html if 'data-status="saved"' in html else None

    try:
        done = wait_until(progressed, 120, "the calibration to be saved", interval=0.2)
    except AssertionError:
        print(run_state(station.data_dir), station.worker_logs())
        raise
    assert seen == sorted(seen) and all(0 <= n <= 6 for n in seen)
    assert run_state(station.data_dir)["views_done"] == 6
    assert 'hx-trigger="every' not in done and ">Calibrate</button>" in done

    current = load_calibration(station.data_dir / "calibration" / "current.json")
    assert f'data-calibration-id="{current.id}"' in done  # the saved one, on the same panel
    assert run_state(station.data_dir)["calibration_id"] == current.id
    # The numbers: focal length within 0.5 %, distance 1 %, elevation 0.3 degrees.
    assert current.views_used == 6
    assert current.intrinsics.fx == pytest.approx(DEFAULT_INTRINSICS.fx, rel=0.005)
    assert current.geometry.distance_m == pytest.approx(DEFAULT_GEOMETRY.distance_m, rel=0.01)
    assert current.geometry.elevation_deg == pytest.approx(DEFAULT_GEOMETRY.elevation_deg,
                                                           abs=0.3)
    assert f"{current.intrinsics.fx:.1f} px" in browser.get("/calibration").get_data(
        as_text=True)


def test_a_missing_board_and_a_killed_worker_read_failed_with_a_sentence(
        make_station) -> None:
    # At 64x48 pixels the board's squares are too small to find (as in the CLI's test).
    station = make_station(SCANNER_MOCK_RESOLUTION="64x48", SCANNER_MOCK_CAPTURE_SECONDS="0.3")
    browser = sign_in(station.app)
    station.start_worker()

    assert browser.post("/calibration", data={"views": "4"}, headers=HX).status_code == 200
    html = poll_panel(browser, station, "failed", 60)
    assert ("The calibration board was not found in 4 of 4 photos: lay it flat in the middle "
            "of the platter") in html
    assert "Traceback" not in html and ">Calibrate</button>" in html
    assert not (station.data_dir / "calibration" / "current.json").exists()

    # A work-horse killed mid-run: the worker's handler marks the run failed at once.
    assert browser.post("/calibration", data={"views": "40"}, headers=HX).status_code == 200
    running = wait_until(lambda: (s := run_state(station.data_dir)).get("pid") and
                         s["views_done"] >= 1 and s, 60, "the calibration to be running")
    again = browser.post("/calibration", data={"views": "4"}, headers=HX)
    assert again.status_code == 409
    assert "A calibration is already under way" in again.get_data(as_text=True)
    os.kill(running["pid"], signal.SIGKILL)
    html = poll_panel(browser, station, "failed", 30)
    assert ("The calibration stopped because the worker process running it was killed by "
            "signal 9; start it again.") in html
    assert run_state(station.data_dir)["views_done"] < 40
    # The worker lives on and takes the next job.
    assert station.workers[0].poll() is None
