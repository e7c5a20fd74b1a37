"""One run of the scan job (ScanRun): claim the queued scan, take the hardware lock, drive the
rig through the frames not yet recorded (scans/frames.py), then turn whatever happened into
the scan's final status and one sentence, and write its metadata, record and export."""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from hal import CameraTimeout, HardwareError, HardwareStopped, load_rig
from scanner_app.config import current_settings
from scanner_app.models import (
    SCAN_UNDER_WAY,
    Capture,
    Scan,
    ScanStatus,
    transition,
    update_while,
)
from scanner_app.platform.clock import iso, utcnow
from scanner_app.platform.extensions import db
from scanner_app.platform.hardware_lock import HardwareBusy, hardware_lock
from scanner_app.platform.log_context import bind_log_ids
from scanner_app.platform.storage import current_storage
from scanner_app.platform.zips import write_scan_export
from scanner_app.scans import hooks as scan_hooks
from scanner_app.scans.disk_full import DISK_FULL, disk_full
from scanner_app.scans.frames import FrameSteps, _Cancelled, _Stopped, _Superseded
from scanner_app.scans.kept_frames import frames_kept_sentence
from scanner_app.scans.metadata import ScanMetadata
from scanner_app.scans.pipeline import CapturePipeline
from scanner_app.scans.plates import FrameMasks
from scanner_app.scans.recovery import Heartbeat
from scanner_app.scans.service import job_profile

log = logging.getLogger("scanner.scan_job")


class _AllTaken(Exception):
    pass


def _sentence(text: str) -> str:
    text = " ".join(str(text).split())
    return text if text.endswith((".", "!", "?")) else f"{text}."


class ScanRun(FrameSteps):
    """One job's work on one scan, from its claim to its final status."""

    def __init__(self, scan_id: int, should_stop: Callable[[], bool] = lambda: False,
                 lock_wait: float = 20.0):
        from rq import get_current_job

        self.scan_id = scan_id
        self.should_stop = should_stop  # the worker is shutting down (scans/job.py)
        self.lock_wait = lock_wait  # seconds to wait for the hardware lock
        self.app = current_app._get_current_object()
        self.settings = current_settings()
        self.store = current_storage()
        self.job = get_current_job()
        self.job_id = self.job.id if self.job is not None else None
        self.recorded: set[int] = set()
        self.index: int | None = None  # frame being taken
        self.light_wanted = False  # switched back on when a pause ends
        self.pending_file: Path | None = None  # written, not yet recorded
        self.frame_masks = FrameMasks()  # keeps the ring's plate prepared between frames

    # --- lifecycle ---------------------------------------------------------------------
    def run(self) -> str:
        scan = db.session.get(Scan, self.scan_id)
        if scan is None:
            log.warning("Scan %s does not exist (deleted?); job %s has nothing to do",
                        self.scan_id, self.job_id)
            return "missing"
        if not self._claim():
            db.session.refresh(scan)
            log.info("Scan %s is %s; job %s has nothing to do", scan.id, scan.status, self.job_id)
            return scan.status
        self.scan = scan
        self.session_id = scan.session_id
        bind_log_ids(session=self.session_id, scan=self.scan_id)  # on every line from here
        self.planned = scan.frames_planned
        self.profile = job_profile(scan, self.settings)  # as it started (its snapshot)
        self.images_dir = self.store.scan_images_dir(self.session_id, scan.id)
        self.meta = ScanMetadata(self.store.scan_metadata_path(self.session_id, scan.id),
                                 self.store.scan_frames_log_path(self.session_id, scan.id),
                                 self.profile)
        self.pipeline = CapturePipeline(self.app, self._record, name=f"scan-{scan.id}-recorder")
        self._note_process()
        heartbeat = Heartbeat(self.app, scan.id, self.job_id)
        heartbeat.start()
        try:
            return self._run_claimed()
        finally:
            heartbeat.stop()

    def _claim(self) -> bool:
        """queued -> running, only for the job the scan was queued with."""
        now = utcnow()
        claimed = transition(Scan, self.scan_id, ScanStatus.RUNNING, from_=ScanStatus.QUEUED,
                             where=self._ours(), heartbeat_at=now, finished_at=None,
                             started_at=func.coalesce(Scan.started_at, now))
        db.session.commit()
        return claimed

    def _note_process(self) -> None:
        """Tell recovery which process runs the scan, so a killed one is noticed at once."""
        if self.job is None:
            return
        try:
            self.job.meta.update(pid=os.getpid(), host=socket.gethostname())
            self.job.save_meta()
        except Exception as exc:  # noqa: BLE001 - recovery falls back to heartbeats
            log.info("Could not store the job's process id: %s", exc)

    def _run_claimed(self) -> str:
        status, error = ScanStatus.FAILED, None
        try:
            self._load_previous()
            self.images_dir.mkdir(parents=True, exist_ok=True)
            if len(self.recorded) >= self.planned:
                raise _AllTaken()  # e.g. killed while exporting: nothing to drive the rig for
            with hardware_lock(self.settings.data_dir, self.lock_wait,
                               should_stop=self.should_stop):
                rig = load_rig(self.settings.hal)
                try:
                    self._drive(rig)
                finally:
                    rig.close()  # light off, motor off, camera closed, whatever happened
                    self.meta.rig_state = {
                        "light_on": rig.light.is_on,
                        "motor_enabled": rig.turntable.is_enabled,
                        "camera_open": rig.camera.is_open,
                        "close_errors": list(rig.close_errors),
                    }
                    # Every frame taken is recorded before the scan's end is decided (also
                    # on a failure: the frames before it count, and the messages say so).
                    self.pipeline.close()
                self.pipeline.check()  # a frame that could not be recorded fails the scan
            status = ScanStatus.COMPLETED
        except _AllTaken:
            status = ScanStatus.COMPLETED
        except _Superseded as exc:
            log.warning("Scan %s: job %s stops: %s", self.scan_id, self.job_id, exc)
            return "superseded"
        except _Cancelled:
            status = ScanStatus.CANCELLED
        except (_Stopped, HardwareStopped):  # between frames, or mid-move (position saved)
            status, error = ScanStatus.INTERRUPTED, self._stopped_sentence(
                "The worker was stopped during the scan.", resume=True)
        except HardwareBusy as exc:
            status, error = ScanStatus.INTERRUPTED, str(exc)
            if self.should_stop():
                error = self._stopped_sentence("The worker was stopped during the scan.",
                                               resume=True)
        except CameraTimeout as exc:
            # A camera that stopped answering: resumable once it is seen to (the rig is closed,
            # light and motor off, whatever happened).
            status = ScanStatus.INTERRUPTED
            error = self._stopped_sentence(_sentence(str(exc)), resume=True)
        except HardwareError as exc:
            if disk_full(exc):  # a camera driver that wraps the failed write
                status = ScanStatus.INTERRUPTED
                error = self._stopped_sentence(DISK_FULL, resume=True)
            else:
                error = self._stopped_sentence(_sentence(str(exc)))
        except OSError as exc:
            if exc.errno == errno.ENOSPC:  # resumable once space is freed
                status = ScanStatus.INTERRUPTED
                error = self._stopped_sentence(DISK_FULL, resume=True)
            else:
                error = self._stopped_sentence(self._os_error_sentence(exc))
        except Exception as exc:
            if type(exc).__name__ == "JobTimeoutException":
                status, error = ScanStatus.INTERRUPTED, self._stopped_sentence(
                    "The scan ran longer than the job time limit.", resume=True)
            elif disk_full(exc):
                # The database hit the full disk before the frame file did: the same story.
                log.warning("Scan %s: the database could not be written: %s", self.scan_id, exc)
                status = ScanStatus.INTERRUPTED
                error = self._stopped_sentence(DISK_FULL, resume=True)
            else:
                # The exception's text (SQL and its parameters, paths, reprs) is for the log,
                # never for the person looking at the scan. Resumable: an outage passes.
                log.exception("Scan %s: unexpected error", self.scan_id)
                status, error = ScanStatus.INTERRUPTED, self._unexpected()
        if status is not ScanStatus.COMPLETED:
            log.warning("Scan %s %s: %s", self.scan_id, status, error or "")
        self._finish(status, error)
        return status

    # --- the end -----------------------------------------------------------------------
    def _finish(self, status: ScanStatus, error: str | None) -> None:
        """Files first, status last: while the scan still reads running/paused, delete and
        merge of its session answer 409, so nothing below can recreate the directory of a
        session that is gone or write into one that was merged away."""
        db.session.rollback()  # whatever the failure left half-done (never a half frame)
        if not self._touch():
            return  # another job owns the scan (and maybe the pending file's name) now
        if status is not ScanStatus.COMPLETED:
            # Written but never recorded: the database and the disk agree on what was taken.
            for path in [self.pending_file, *self.pipeline.pending.values()]:
                if path is not None:
                    path.unlink(missing_ok=True)
        now = utcnow()
        values: dict[str, Any] = {"control": None, "error": error, "message": None}
        if not status.is_interrupted:  # an interrupted scan is not finished: it can resume
            values["finished_at"] = now
        db.session.refresh(self.scan)
        final = {**self.scan.to_dict(), "status": status, "control": None, "error": error,
                 "message": None}
        if "finished_at" in values:
            final["finished_at"] = iso(now)
        try:
            self.meta.write(final, recorded=self.recorded)
        except OSError as exc:
            log.warning("Scan %s: could not write its final metadata: %s", self.scan_id, exc)
        if status is ScanStatus.COMPLETED:
            self._export()
        ended = transition(Scan, self.scan_id, status, from_=SCAN_UNDER_WAY, where=self._ours(),
                           **values, heartbeat_at=now)
        db.session.commit()
        if not ended:
            log.warning("Scan %s was taken over while it was being finished; job %s leaves it "
                        "alone", self.scan_id, self.job_id)
            return
        log.info("Scan %s %s with %s of %s frames", self.scan_id, status, len(self.recorded),
                 self.planned)
        if status is ScanStatus.COMPLETED:  # e.g. a profile's automatic reconstruction
            scan_hooks.run_after_scan_completed(self.scan_id)

    def _touch(self) -> bool:
        """A sign of life, if the scan is still this job's; False (logged) when not."""
        alive = update_while(Scan, self.scan_id, SCAN_UNDER_WAY, where=self._ours(),
                             heartbeat_at=utcnow())
        db.session.commit()
        if not alive:
            log.warning("Scan %s was taken over; job %s leaves it alone", self.scan_id,
                        self.job_id)
            return False
        return True

    def _at(self) -> str:
        # The frame the recorder could not record, if that stopped the scan (the camera may
        # have taken a frame or two more meanwhile; they are taken again on resume).
        index = self.pipeline.failed_at if self.pipeline.failed_at is not None else self.index
        if index is not None:
            return f"at frame {index + 1} of {self.planned}"
        taken = len(self.recorded)
        return f"after {taken} of {self.planned} frames" if taken else "before its first frame"

    def _stopped_sentence(self, what: str, resume: bool = False) -> str:
        """"The scan stopped at frame 3 of 5: <what> The 2 frames ... kept; <what next>"."""
        kept = frames_kept_sentence(len(self.recorded), self.planned, resumable=resume)
        return f"The scan stopped {self._at()}: {what} {kept}"

    def _unexpected(self) -> str:
        return (f"An unexpected error stopped the scan {self._at()}; the details are in the "
                "worker's log. "
                + frames_kept_sentence(len(self.recorded), self.planned, or_new_scan=True))

    @staticmethod
    def _os_error_sentence(exc: OSError) -> str:
        where = f" {exc.filename}" if exc.filename else ""
        return (f"the station could not write{where} ({exc.strerror or exc}). Check that the "
                "data directory is writable and the storage is healthy.")

    # --- files -------------------------------------------------------------------------
    def _load_previous(self) -> None:
        """On resume: which frames are recorded, and the metadata written so far."""
        self.recorded = set(db.session.scalars(
            select(Capture.frame_index).where(Capture.scan_id == self.scan_id,
                                              Capture.frame_index.is_not(None))
        ))
        db.session.commit()
        self.meta.load(self.job_id, utcnow(),
                       first_frame=min(set(range(self.planned)) - self.recorded, default=None))

    def _export(self) -> None:
        try:
            write_scan_export(self.session_id, self.scan_id)
        except Exception:  # noqa: BLE001 - the scan is complete; the ZIP can be made later
            log.exception("Scan %s: writing its export ZIP failed", self.scan_id)
        finally:
            db.session.rollback()
