"""The calibration job: an RQ job on the `hardware` queue that calibrates the rig the way
`scanner hal calibrate` does (scans/calibration_run.py calibrate_rig) and reports its progress
and its end in <data dir>/calibration/run.json for the calibration page."""

from __future__ import annotations

import logging
import os
from typing import Any

from hal import HardwareError
from scanner_app.config import current_settings
from scanner_app.platform.clock import iso, utcnow
from scanner_app.platform.hardware_lock import HardwareBusy
from scanner_app.platform.queues import CALIBRATION_JOB, job_app_context, on_horse_killed
from scanner_app.scans.calibration_run import (
    CalibrationRunStatus,
    calibrate_rig,
    fail_run,
    update_run,
)

log = logging.getLogger("scanner.calibration_job")

# Like a scan's: a `scanner hal check` in another terminal gets a moment to finish.
LOCK_WAIT_SECONDS = 20.0
UNEXPECTED = ("The calibration failed unexpectedly; the details are in the worker's log. "
              "Try again, and report it if it keeps happening.")


def run_rig_calibration(run_id: str, views: int) -> str:
    """Calibrate the rig for the page's run `run_id`; returns the run's final status."""
    with job_app_context():
        data_dir = current_settings().data_dir
        started = update_run(data_dir, run_id, status=CalibrationRunStatus.RUNNING,
                             pid=os.getpid(), views_total=views)
        if started is None:  # a newer run replaced this one's record: nothing to report to
            log.warning("Calibration run %s is no longer the newest; not started", run_id)
            return CalibrationRunStatus.FAILED.value

        def progress(done: int, total: int) -> None:
            update_run(data_dir, run_id, views_done=done, views_total=total)

        try:
            cal, path = calibrate_rig(current_settings(), views, on_progress=progress,
                                      lock_wait=LOCK_WAIT_SECONDS)
        except (HardwareBusy, HardwareError) as exc:  # one sentence saying what to do
            log.warning("Calibration %s failed: %s", run_id, exc)
            fail_run(data_dir, run_id, str(exc))
            return CalibrationRunStatus.FAILED.value
        except Exception:
            log.exception("Calibration %s failed unexpectedly", run_id)
            fail_run(data_dir, run_id, UNEXPECTED)
            raise
        update_run(data_dir, run_id, status=CalibrationRunStatus.SAVED, pid=None,
                   calibration_id=cal.id, finished_at=iso(utcnow()))
        log.info("Calibration %s saved as %s (RMS %.3f px)", run_id, path, cal.rms_px)
        return CalibrationRunStatus.SAVED.value


@on_horse_killed(CALIBRATION_JOB)
def calibration_horse_killed(job: Any, how: str) -> None:
    """The worker's clean-up when this job's process was killed (it switched the rig off
    already): the page reads the run as failed, with a sentence."""
    if job.args:
        fail_run(current_settings().data_dir, str(job.args[0]),
                 f"The calibration stopped because the worker process running it {how}; "
                 "start it again.")
