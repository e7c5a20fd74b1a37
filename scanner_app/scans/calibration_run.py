"""Calibrating the rig: the one function that drives the rig through a calibration (used by
`scanner hal calibrate` and by the calibration job), and the state of the newest run started
from the web page, kept in <data dir>/calibration/run.json (written atomically).

The web process never touches the hardware: `start_calibration` only checks that the rig is
free and puts a job on the `hardware` queue (scans/calibration_job.py); the job reports its
progress and its end in run.json, which the page polls. A run whose process died without
saying so (a killed worker) is read as failed, with a sentence, by whoever looks next.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from hal import load_rig
from hal.atomic import atomic_write_bytes
from scanner_app.config import Settings, current_settings
from scanner_app.platform import queues
from scanner_app.platform.clock import iso, utcnow
from scanner_app.platform.errors import BadRequest, Conflict, ServiceUnavailable
from scanner_app.platform.hardware_lock import hardware_lock

if TYPE_CHECKING:
    from hal.calibration import Calibration

# OpenCV (hal.calibration, scans/calibrations.py) is imported only where a calibration is
# solved or read: the web process loads this module at start and must stay small (~40 MB).

log = logging.getLogger("scanner.calibration")

RUN_FILE = "run.json"
DEFAULT_VIEWS = 12
MIN_VIEWS, MAX_VIEWS = 4, 72
LOST_MESSAGE = ("The calibration stopped because the worker running it ended; start it "
                "again.")
QUEUE_LOST_MESSAGE = ("The calibration job is no longer in the job queue (the queue was "
                      "emptied); start it again.")
QUEUE_UNAVAILABLE = ("The job queue (Redis) is not reachable, so the calibration was not "
                     "started. Start the station with 'scanner run' or check "
                     "SCANNER_REDIS_URL.")


class CalibrationRunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SAVED = "saved"
    FAILED = "failed"

    @property
    def is_active(self) -> bool:
        """Waiting for the worker or driving the rig: no second run may start."""
        return self in (CalibrationRunStatus.QUEUED, CalibrationRunStatus.RUNNING)

    @property
    def is_failed(self) -> bool:
        return self is CalibrationRunStatus.FAILED

    @property
    def badge(self) -> str:
        """The station.css badge class suffix (a saved run looks like a completed scan)."""
        return "completed" if self is CalibrationRunStatus.SAVED else self.value

    @property
    def label(self) -> str:
        return {"queued": "Waiting for the worker…", "running": "Photographing the board…",
                "saved": "Calibration saved", "failed": "Calibration failed"}[self.value]


@dataclass(frozen=True)
class CalibrationRun:
    """One calibration started from the page (the CLI's runs leave no run.json)."""

    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    status: CalibrationRunStatus = CalibrationRunStatus.QUEUED
    views_done: int = 0
    views_total: int = DEFAULT_VIEWS
    error: str | None = None
    calibration_id: str | None = None
    pid: int | None = None  # the work-horse driving the rig, while running
    created_at: str = field(default_factory=lambda: iso(utcnow()))
    finished_at: str | None = None

    @property
    def job_id(self) -> str:
        return f"calibration-{self.id}"

    @property
    def percent(self) -> float:
        return 100.0 * self.views_done / self.views_total if self.views_total else 0.0


# --- driving the rig (the CLI and the job) ---------------------------------------------

def calibrate_rig(settings: Settings, views: int,
                  on_progress: Callable[[int, int], None] | None = None,
                  lock_wait: float = 0.0) -> tuple[Calibration, Path]:
    """Take the hardware lock, photograph the board at `views` angles, solve, and save the
    result as the rig's current calibration. Raises HardwareBusy or a HardwareError (a
    CalibrationError says what to do) and then saves nothing."""
    from hal.calibration import run_calibration
    from scanner_app.scans.calibrations import calibration_dir, save_rig_calibration

    workdir = calibration_dir(settings.data_dir) / f"photos-{utcnow():%Y%m%dT%H%M%S}"
    with hardware_lock(settings.data_dir, lock_wait), load_rig(settings.hal) as rig:
        rig.camera.set_resolution(None)
        rig.turntable.home()
        with rig.hold_position(), rig.light.lit():
            rig.camera.lock_exposure()
            cal = run_calibration(rig, workdir, views=views, on_progress=on_progress)
    return cal, save_rig_calibration(settings.data_dir, cal)


# --- the page's run ----------------------------------------------------------------------

def current_rig_calibration() -> tuple[Calibration | None, str | None]:
    """The calibration new scans use, or (None, why not): scans/calibrations.py's answer."""
    from scanner_app.scans.calibrations import current_calibration

    return current_calibration(current_settings().data_dir)


def _folder(data_dir: Path) -> Path:
    # scans/calibrations.calibration_dir's folder, without importing OpenCV (tested equal).
    return Path(data_dir) / "calibration"


def run_path(data_dir: Path) -> Path:
    return _folder(data_dir) / RUN_FILE


@contextlib.contextmanager
def _run_lock(data_dir: Path) -> Iterator[None]:
    """Serialise read-modify-write of run.json (two clicks, the job and the page)."""
    folder = _folder(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / "run.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the flock


def _read(data_dir: Path) -> CalibrationRun | None:
    try:
        raw = json.loads(run_path(data_dir).read_text(encoding="utf-8"))
        return CalibrationRun(**{**raw, "status": CalibrationRunStatus(raw["status"])})
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("Ignoring an unreadable %s: %s", run_path(data_dir), exc)
        return None


def _write(data_dir: Path, run: CalibrationRun) -> None:
    atomic_write_bytes(run_path(data_dir), json.dumps(asdict(run), indent=2).encode())


def update_run(data_dir: Path, run_id: str, **changes: object) -> CalibrationRun | None:
    """Change the run `run_id` if it is still the newest one; returns it as written."""
    with _run_lock(data_dir):
        run = _read(data_dir)
        if run is None or run.id != run_id:
            return None
        run = replace(run, **changes)
        _write(data_dir, run)
        return run


def fail_run(data_dir: Path, run_id: str, message: str) -> CalibrationRun | None:
    return update_run(data_dir, run_id, status=CalibrationRunStatus.FAILED, error=message,
                      pid=None, finished_at=iso(utcnow()))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _job_lost(settings: Settings, run: CalibrationRun) -> bool:
    """A queued run whose job Redis no longer has, or that ended before it could say so (its
    worker died before the job started). Best effort: Redis being down is no proof."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

    try:
        job = Job.fetch(run.job_id, connection=queues.redis_connection(settings))
        status = job.get_status(refresh=False)
    except NoSuchJobError:
        return True
    except queues.QUEUE_ERRORS:
        return False
    return status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)


def calibration_run(settings: Settings | None = None) -> CalibrationRun | None:
    """The newest run started from the page, a dead one read as failed."""
    settings = settings or current_settings()
    run = _read(settings.data_dir)
    if run is None or not run.status.is_active:
        return run
    if run.status is CalibrationRunStatus.RUNNING and run.pid and not _process_alive(run.pid):
        return fail_run(settings.data_dir, run.id, LOST_MESSAGE) or run
    if run.status is CalibrationRunStatus.QUEUED and _job_lost(settings, run):
        return fail_run(settings.data_dir, run.id, QUEUE_LOST_MESSAGE) or run
    return run


CALIBRATION_HAS_RIG = "A calibration is running; start the scan when it has finished."


def refuse_while_calibrating(settings: Settings | None = None) -> None:
    """Conflict (409) while a calibration from the page is queued or running: a scan queued
    behind it would run with the ChArUco board still on the platter."""
    run = calibration_run(settings)
    if run is not None and run.status.is_active:
        raise Conflict(CALIBRATION_HAS_RIG, code="calibration_active")


def start_calibration(views: int = DEFAULT_VIEWS) -> CalibrationRun:
    """Queue a calibration of the rig. Conflict (409) while a scan or another calibration
    holds the rig; ServiceUnavailable (503) when Redis is down."""
    from scanner_app.scans.service import active_scan  # service re-exports this module

    settings = current_settings()
    scan = active_scan()
    if scan is not None:
        raise Conflict(f"Scan {scan.id} is {scan.status} and a calibration needs the rig to "
                       "itself: wait for the scan to finish or cancel it, then calibrate.",
                       code="scan_active")
    if not MIN_VIEWS <= views <= MAX_VIEWS:  # the CLI's --views range
        raise BadRequest(f"The number of photos must be from {MIN_VIEWS} to {MAX_VIEWS}.",
                         code="invalid_form")
    calibration_run(settings)  # first read a dead run as failed
    with _run_lock(settings.data_dir):
        newest = _read(settings.data_dir)
        if newest is not None and newest.status.is_active:
            raise Conflict("A calibration is already under way; wait for it to finish.",
                           code="calibration_active")
        run = CalibrationRun(views_total=views)
        connection = queues.redis_connection(settings)
        try:
            queues.enqueue(settings, queues.CALIBRATION_JOBS, run.id, views,
                           connection=connection, job_id=run.job_id,
                           description=f"Rig calibration, {views} photos")
        except queues.QUEUE_ERRORS as exc:
            log.warning("Could not enqueue the calibration: %s", exc)
            raise ServiceUnavailable(QUEUE_UNAVAILABLE, code="queue_unavailable") from None
        # Written after the enqueue: a job that starts first finds no run yet and waits
        # for the lock above, which this block still holds.
        _write(settings.data_dir, run)
    return run
