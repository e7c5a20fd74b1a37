"""The reconstruction job: an RQ job on the `processing` queue (its own worker, at low CPU
priority, never the worker that drives the rig).

run_reconstruction(id) claims the queued row (running), reads the scan's frames, runs the
pipeline in a work folder outside the session (<data dir>/processing/reconstruction-<id>), and
only once everything is built moves the files into the scan's model folder under the
session's exports/ and marks the row completed. Cancelled or deleted meanwhile (the heartbeat
sees the row leave `running`): it stops at its next check and removes its work folder, so
nothing is left behind. Bad input ends `failed` with a sentence saying what to change.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

from scanner_app.config import current_settings
from scanner_app.models import Reconstruction, ReconstructionStatus, transition, update_while
from scanner_app.platform.clock import utcnow
from scanner_app.platform.extensions import db
from scanner_app.platform.queues import job_app_context
from scanner_app.platform.storage import StorageManager, current_storage
from scanner_app.reconstruction import station_link
from scanner_app.reconstruction.hull import HullError
from scanner_app.reconstruction.inputs import InputError, scan_frames
from scanner_app.reconstruction.pipeline import Cancelled, reconstruct
from scanner_app.reconstruction.recovery import Heartbeat
from scanner_app.reconstruction.remote_worker import run_remote
from scanner_app.reconstruction.sfm import RegistrationError

log = logging.getLogger("scanner.reconstruction")

NICENESS = 10  # a reconstruction yields the CPU to the web server and the rig's worker
# "0": build the hull from the known poses even where pycolmap is installed (quick models,
# tests); "1": require pycolmap; unset or "auto": refine when pycolmap is there.
REFINE_ENV = "SCANNER_RECONSTRUCTION_REFINE"
REPORT_EVERY_SECONDS = 0.5


def lower_priority() -> None:
    try:
        current = os.nice(0)
        if current < NICENESS:
            os.nice(NICENESS - current)
    except OSError:
        pass


def run_reconstruction(reconstruction_id: int) -> str:
    """Build reconstruction `reconstruction_id`; returns its final status. On a processing
    worker started with --station (another computer), over the station's HTTP API."""
    lower_priority()
    link = station_link.from_environment()
    if link is not None:
        with job_app_context():
            return run_remote(reconstruction_id, link, current_settings().data_dir,
                              _refine_wanted())
    with job_app_context() as app:
        try:
            return _Run(app, reconstruction_id).run()
        finally:
            db.session.remove()


def _refine_wanted() -> bool | None:
    value = os.environ.get(REFINE_ENV, "auto").strip().lower()
    return {"0": False, "false": False, "1": True, "true": True}.get(value)


class _Run:
    def __init__(self, app, reconstruction_id: int):
        self.app, self.id = app, reconstruction_id
        self.store: StorageManager = current_storage()
        self.work = current_settings().data_dir / "processing" / f"reconstruction-{self.id}"
        self.heartbeat = Heartbeat(app, reconstruction_id)
        self._last_report = 0.0

    def run(self) -> str:
        now = utcnow()
        if not transition(Reconstruction, self.id, ReconstructionStatus.RUNNING,
                          from_=ReconstructionStatus.QUEUED, started_at=now, heartbeat_at=now,
                          stage="loading", percent=0.0):
            db.session.rollback()
            row = db.session.get(Reconstruction, self.id)
            return row.status.value if row else "deleted"
        db.session.commit()
        row = db.session.get(Reconstruction, self.id)
        session_id, scan_id = row.session_id, row.scan_id
        self.heartbeat.start()
        try:
            return self._build(session_id, scan_id)
        finally:
            self.heartbeat.stop()
            shutil.rmtree(self.work, ignore_errors=True)

    def _build(self, session_id: int, scan_id: int) -> str:
        try:
            frames, facts = scan_frames(self.store.session_dir(session_id),
                                        self.store.scan_metadata_path(session_id, scan_id))
            shutil.rmtree(self.work, ignore_errors=True)
            built = self.work / "out"
            built.mkdir(parents=True)
            # The platter's rim gives the refined poses their scale and height.
            facts["platter_radius_m"] = current_settings().hal.turntable.platter_radius_mm / 1000
            metrics = reconstruct(frames, built, self.work, report=self._report,
                                  cancel=self._check, facts=facts, use_colmap=_refine_wanted())
            self._check()
            return self._publish(built, session_id, scan_id, metrics)
        except Cancelled:
            log.info("Reconstruction %s stopped: cancelled, or its scan or session deleted",
                     self.id)
            return "cancelled"
        except (InputError, HullError, RegistrationError) as exc:
            return self._fail(str(exc))
        except Exception as exc:  # noqa: BLE001 - the row must end, with a sentence
            log.exception("Reconstruction %s failed", self.id)
            return self._fail(f"Building the model failed unexpectedly ({type(exc).__name__}). "
                              "Try again; if it fails again, look at the processing worker's "
                              "log.")

    def _check(self) -> None:
        """Raise Cancelled once the row is no longer running (checked by the heartbeat)."""
        if self.heartbeat.gone.is_set():
            raise Cancelled

    def _report(self, stage: str, percent: float, eta: int | None) -> None:
        self._check()
        now = time.monotonic()
        if now - self._last_report < REPORT_EVERY_SECONDS and percent < 100:
            return
        self._last_report = now
        changed = update_while(Reconstruction, self.id, ReconstructionStatus.RUNNING,
                               stage=stage, percent=percent, eta_seconds=eta,
                               heartbeat_at=utcnow())
        db.session.commit()
        if not changed:
            self.heartbeat.gone.set()
            raise Cancelled

    def _publish(self, built: Path, session_id: int, scan_id: int, metrics: dict) -> str:
        """Move the files into the scan's model folder, then mark the row completed. The
        folder is made only inside an existing exports/ (never recreating a deleted
        session's folder)."""
        target = self.store.reconstruction_dir(session_id, scan_id)
        staging = target.with_name(f".{target.name}.{self.id}.part")
        try:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()  # FileNotFoundError: the session's folder is gone
            for path in sorted(built.rglob("*")):
                if path.is_file():
                    (staging / path.relative_to(built)).parent.mkdir(exist_ok=True)
                    os.replace(path, staging / path.relative_to(built))
            old = target.with_name(f".{target.name}.{self.id}.old")
            if target.exists():
                os.replace(target, old)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        except FileNotFoundError:
            shutil.rmtree(staging, ignore_errors=True)
            raise Cancelled from None
        outputs = metrics.get("outputs", [])
        if transition(Reconstruction, self.id, ReconstructionStatus.COMPLETED,
                      from_=ReconstructionStatus.RUNNING, stage="done", percent=100.0,
                      eta_seconds=0, finished_at=utcnow(), outputs=json.dumps(outputs),
                      metrics=json.dumps(metrics), error=None):
            db.session.commit()
            log.info("Reconstruction %s of scan %s completed", self.id, scan_id)
            return ReconstructionStatus.COMPLETED.value
        db.session.rollback()
        # Cancelled at the last moment: its files go too.
        shutil.rmtree(target, ignore_errors=True)
        return "cancelled"

    def _fail(self, sentence: str) -> str:
        if transition(Reconstruction, self.id, ReconstructionStatus.FAILED,
                      from_=ReconstructionStatus.RUNNING, error=sentence, finished_at=utcnow(),
                      eta_seconds=None):
            db.session.commit()
            log.warning("Reconstruction %s failed: %s", self.id, sentence)
            return ReconstructionStatus.FAILED.value
        db.session.rollback()
        return "cancelled"
