"""The calibration page in a signed-in browser (Flask client): the current calibration or
why there is none, the Calibrate form, and the refusals that need no worker."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
import redis
from rq.job import Job

from hal.calibration import Calibration
from hal.calibration_board import BoardSpec
from hal.mock.scene import DEFAULT_GEOMETRY, DEFAULT_INTRINSICS
from scanner_app.scans.calibration_run import CalibrationRun, CalibrationRunStatus, run_path
from scanner_app.scans.calibrations import calibration_dir, save_rig_calibration
from tests.conftest import build_app
from tests.support import dispose
from tests.web.conftest import HX, add_scan, add_session, make_web_app, sign_in

REDIS_DB = 14  # a database of the shared test Redis for these tests alone, flushed per test


@pytest.fixture
def web_app(data_dir: Path) -> Iterator:
    app = make_web_app(data_dir)
    yield app
    dispose(app)


@pytest.fixture
def browser(web_app):
    return sign_in(web_app)


def test_without_a_calibration_the_page_says_poses_are_nominal(browser) -> None:
    html = browser.get("/calibration").get_data(as_text=True)
    assert "<h1>Rig calibration</h1>" in html
    assert "The rig has no calibration (run `scanner hal calibrate`), so poses are nominal" \
        in html.replace("&#96;", "`")
    assert 'action="/calibration"' in html and ">Calibrate</button>" in html
    assert 'name="csrf_token"' in html  # the plain form carries its token
    assert 'href="/calibration" aria-current="page">Calibration</a>' in html  # in the nav
    assert "<script>" not in html and "style=" not in html  # CSP: nothing inline


def test_the_current_calibration_is_shown(browser, data_dir: Path) -> None:
    cal = Calibration(DEFAULT_INTRINSICS, DEFAULT_GEOMETRY, 0.4567, BoardSpec())
    save_rig_calibration(data_dir, cal)
    html = browser.get("/calibration").get_data(as_text=True)
    assert f'data-calibration-id="{cal.id}"' in html
    assert f"{DEFAULT_INTRINSICS.fx:.1f} px at {DEFAULT_INTRINSICS.width}×" in html
    assert f"{DEFAULT_GEOMETRY.distance_m * 100:.2f} cm" in html
    assert f"{DEFAULT_GEOMETRY.height_m * 100:.2f} cm" in html
    assert f"{DEFAULT_GEOMETRY.elevation_deg:.2f}°" in html
    assert "0.457 px" in html and cal.created_at in html
    assert "The rig has no calibration" not in html


def test_an_unreadable_calibration_says_so_in_a_sentence(browser, data_dir) -> None:
    folder = calibration_dir(data_dir)
    folder.mkdir(parents=True)
    (folder / "current.json").write_text("{not json")
    answer = browser.get("/calibration")
    assert answer.status_code == 200
    assert "Until then poses are nominal." in answer.get_data(as_text=True)


def test_calibrating_is_refused_while_a_scan_is_active(web_app, browser) -> None:
    scan_id = add_scan(web_app, add_session(web_app, "Trial"), "running")
    answer = browser.post("/calibration", data={"views": "6"}, headers=HX)
    assert answer.status_code == 409
    text = answer.get_data(as_text=True)
    assert f"Scan {scan_id} is running and a calibration needs the rig to itself" in text
    assert "Traceback" not in text
    assert not run_path(web_app.config["SCANNER_SETTINGS"].data_dir).exists()


def test_a_number_of_photos_out_of_range_is_refused(web_app, browser) -> None:
    for views in ("2", "100"):
        answer = browser.post("/calibration", data={"views": views}, headers=HX)
        assert answer.status_code == 400
        assert "The number of photos must be from 4 to 72." in answer.get_data(as_text=True)


def test_a_failed_run_shows_its_sentence_and_the_form_again(web_app, browser) -> None:
    data_dir = web_app.config["SCANNER_SETTINGS"].data_dir
    run = CalibrationRun(status=CalibrationRunStatus.FAILED, views_done=4, views_total=4,
                         error="The calibration board was not found in 4 of 4 photos: lay it "
                               "flat in the middle of the platter.")
    write_run(data_dir, run)
    html = browser.get("/calibration/run", headers=HX).get_data(as_text=True)
    assert html.lstrip().startswith('<section id="calibration"')
    assert 'hx-trigger="every' not in html  # a finished run does not poll
    assert "The calibration board was not found in 4 of 4 photos" in html
    assert 'data-status="failed"' in html and ">Calibrate</button>" in html


def test_a_running_run_whose_process_is_gone_reads_failed(web_app, browser) -> None:
    data_dir = web_app.config["SCANNER_SETTINGS"].data_dir
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    run = CalibrationRun(status=CalibrationRunStatus.RUNNING, views_done=2, views_total=6,
                         pid=int(gone.stdout))
    write_run(data_dir, run)
    html = browser.get("/calibration").get_data(as_text=True)
    assert 'data-status="failed"' in html
    assert "The calibration stopped because the worker running it ended; start it again." in html
    assert json.loads(run_path(data_dir).read_text())["status"] == "failed"


def write_run(data_dir: Path, run: CalibrationRun) -> None:
    run_path(data_dir).parent.mkdir(parents=True, exist_ok=True)
    run_path(data_dir).write_text(json.dumps(asdict(run)))


def test_the_run_file_sits_in_the_calibration_folder(data_dir: Path) -> None:
    assert run_path(data_dir).parent == calibration_dir(data_dir)


def test_without_the_job_queue_nothing_is_started(web_app, browser) -> None:
    # This app's Redis is the station's private socket, which no test started.
    answer = browser.post("/calibration", data={"views": "6"}, headers=HX)
    assert answer.status_code == 503
    assert "The job queue (Redis) is not reachable, so the calibration was not started." \
        in answer.get_data(as_text=True)
    assert not run_path(web_app.config["SCANNER_SETTINGS"].data_dir).exists()


@pytest.fixture
def queue_app(data_dir: Path, redis_server: str) -> Iterator:
    url = redis_server.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    connection = redis.Redis.from_url(url)
    connection.flushdb()
    app = build_app(data_dir, SCANNER_REDIS_URL=url)
    yield app, connection
    connection.flushdb()
    connection.close()
    dispose(app)


def test_a_queued_run_waits_for_the_worker_and_reads_failed_when_its_job_is_gone(
        queue_app) -> None:
    app, connection = queue_app
    person = sign_in(app)
    answer = person.post("/calibration", data={"views": "6"}, headers=HX)
    assert answer.status_code == 200, answer.data
    html = answer.get_data(as_text=True)
    assert 'data-status="queued"' in html and "Waiting for the worker" in html
    assert 'hx-get="/calibration/run" hx-trigger="every 1s"' in html
    run = json.loads(run_path(app.config["SCANNER_SETTINGS"].data_dir).read_text())
    job = Job.fetch(f"calibration-{run['id']}", connection=connection)
    assert job.func_name == "scanner_app.scans.calibration_job.run_rig_calibration"
    assert job.origin == "hardware" and job.args == (run["id"], 6)

    again = person.post("/calibration", data={"views": "6"}, headers=HX)
    assert again.status_code == 409
    assert "A calibration is already under way" in again.get_data(as_text=True)
    assert 'data-status="queued"' in person.get("/calibration").get_data(as_text=True)

    job.delete()  # the queue was emptied (Redis flushed or restarted without its data)
    html = person.get("/calibration/run", headers=HX).get_data(as_text=True)
    assert 'data-status="failed"' in html and 'hx-trigger="every' not in html
    assert "The calibration job is no longer in the job queue" in html
    # Now a new run may start.
    assert person.post("/calibration", data={"views": "4"}, headers=HX).status_code == 200
