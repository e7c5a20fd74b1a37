"""The live preview: an RQ job on the `hardware` queue, run by the worker that owns the rig.

While someone watches (rig/channel.py's watch key), it takes low-resolution frames with the
exposure the next scan would use (light on as a scan has it, exposure and white balance
metered once and held) and publishes each through Redis for the web to relay. It ends:
- a few seconds after the last watcher went away;
- at once when any other job waits on the hardware queue (a scan, a control, a
  calibration): a scan takes priority;
- when a newer preview job replaced it, the worker is shutting down, or after MAX_SECONDS
  (the page queues the next one).
The rig is closed (light off, motor released, camera closed) whatever happened; a killed
work-horse is switched off by the worker (hal.safe_off) and its frame cleared here.
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from redis import Redis
from rq import Queue, get_current_job

from hal import HardwareError, Rig, load_rig
from scanner_app.config import current_settings
from scanner_app.platform import queues
from scanner_app.platform.hardware_lock import HardwareBusy, hardware_lock
from scanner_app.platform.queues import PREVIEW_JOB, job_app_context, on_horse_killed
from scanner_app.rig import channel
from scanner_app.rig.job import rig_state
from scanner_app.rig.mask_preview import MaskPreview
from scanner_app.rig.overlay import framing_overlay

log = logging.getLogger("scanner.preview")

PREVIEW_SIZE = (640, 480)
PREVIEW_QUALITY = 70
MAX_SECONDS = 300.0
MIN_FRAME_SECONDS = 0.1  # at most ~10 frames a second: a Pi has other work
LOCK_WAIT_SECONDS = 3.0
STOP = threading.Event()


class _Ended(Exception):
    """Why the preview ends (a sentence for the log)."""


class PreviewRun:
    def __init__(self, connection: Redis, job_id: str | None) -> None:
        self.connection = connection
        self.job_id = job_id
        self.hardware = Queue(queues.HARDWARE_QUEUE, connection=connection)
        self.started = time.monotonic()
        self.frames = 0

    def should_end(self) -> str | None:
        if STOP.is_set():
            return "the worker is stopping"
        if not channel.watched(self.connection):
            return "nobody watches"
        if self.hardware.count > 0:
            return "another hardware job is waiting"
        if self.job_id is not None and \
                self.connection.get(channel.JOB_KEY) not in (None, self.job_id.encode()):
            return "a newer preview job replaced it"
        if time.monotonic() - self.started > MAX_SECONDS:
            return "it ran its longest"
        return None

    def run(self, rig: Rig, folder: Path) -> None:
        rig.camera.set_resolution(PREVIEW_SIZE)
        lit = channel.light_wanted(self.connection)
        exposure = self._meter(rig, lit)
        overlay = framing_overlay(rig, PREVIEW_SIZE)
        masks = MaskPreview(rig, PREVIEW_SIZE)
        path = folder / "preview.jpg"
        while (why := self.should_end()) is None:
            began = time.monotonic()
            wanted = channel.light_wanted(self.connection)
            if wanted != lit:  # the light control: meter again under the new light
                lit = wanted
                exposure = self._meter(rig, lit)
            info = rig.camera.capture(path, quality=PREVIEW_QUALITY,
                                      exif={"preview_frame": self.frames + 1})
            state = rig_state(rig)
            mask = masks.mask_of(path, state["angle_deg"] or 0.0)
            framing = overlay if mask is None else {**(overlay or {}), "mask": mask}
            meta: dict[str, Any] = {"exposure": exposure, "overlay": framing,
                                    "width": info.width, "height": info.height,
                                    "angle_deg": state["angle_deg"], "light_on": lit}
            channel.publish_frame(self.connection, path.read_bytes(), meta)
            channel.publish_state(self.connection, state)
            self.frames += 1
            rest = MIN_FRAME_SECONDS - (time.monotonic() - began)
            if rest > 0:
                time.sleep(rest)
        raise _Ended(why)

    @staticmethod
    def _meter(rig: Rig, lit: bool) -> dict[str, Any]:
        """Light as the scan would have it, then exposure metered once and held."""
        if lit:
            rig.light.on()
        else:
            rig.light.off()
        rig.camera.unlock_exposure()
        return rig.camera.lock_exposure().as_dict()


def run_preview() -> str:
    """Publish preview frames while watched; returns why it ended."""
    previous = signal.signal(signal.SIGTERM, lambda *_: STOP.set())  # warm shutdown
    job = get_current_job()
    if job is not None:  # which process holds the rig, for people and tests
        job.meta["pid"] = os.getpid()
        job.save_meta()
    try:
        with job_app_context():
            settings = current_settings()
            connection = queues.redis_connection(settings)
            preview = PreviewRun(connection, job.id if job is not None else None)
            if (why := preview.should_end()) is not None:
                log.info("Preview not started: %s", why)
                return why
            try:
                with hardware_lock(settings.data_dir, LOCK_WAIT_SECONDS), \
                        tempfile.TemporaryDirectory(prefix="scanner-preview-") as folder:
                    rig = load_rig(settings.hal)
                    try:
                        preview.run(rig, Path(folder))
                    finally:
                        rig.close()  # light off, motor released, camera closed
                        channel.publish_state(connection, rig_state(rig, light_on=False))
            except _Ended as ended:
                why = str(ended)
            except HardwareBusy:
                why = "another process holds the rig"
            except HardwareError as exc:
                log.warning("Preview stopped: %s", exc)
                why = str(exc)
            finally:
                channel.clear_frame(connection)
                _forget(connection, preview.job_id)
            log.info("Preview ended after %s frames: %s", preview.frames, why)
            return why
    finally:
        signal.signal(signal.SIGTERM, previous)


def _forget(connection: Redis, job_id: str | None) -> None:
    """Drop the preview job key if it still names this job (the next watcher queues anew)."""
    if job_id is None:
        return
    with connection.pipeline() as pipe:
        try:
            pipe.watch(channel.JOB_KEY)
            if pipe.get(channel.JOB_KEY) == job_id.encode():
                pipe.multi()
                pipe.delete(channel.JOB_KEY)
                pipe.execute()
        except Exception as exc:  # noqa: BLE001 - WatchError: a newer job took the key
            log.debug("Preview key not dropped: %s", exc)


@on_horse_killed(PREVIEW_JOB)
def preview_horse_killed(job: Any, how: str) -> None:
    """The worker switched the rig off already (light off); no stale frame stays live."""
    connection = queues.redis_connection(current_settings())
    channel.clear_frame(connection)
    _forget(connection, job.id)
    state = channel.last_state(connection)
    if state is not None:
        channel.publish_state(connection, {**state, "light_on": False, "motor_enabled": False})
    log.warning("Preview job %s %s", job.id, how)
