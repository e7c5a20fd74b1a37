"""Crash recovery of reconstructions: a job whose process died is marked `interrupted` (the
worker's horse-killed handler at once; anyone who looks at it once its heartbeat is stale),
and a new POST for its scan starts it again."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import update

from scanner_app.models import Reconstruction, ReconstructionStatus, transition
from scanner_app.platform.clock import utcnow
from scanner_app.platform.extensions import db
from scanner_app.platform.queues import RECONSTRUCTION_JOB, on_horse_killed

log = logging.getLogger("scanner.reconstruction")

HEARTBEAT_SECONDS = 2.0
STALE_SECONDS = 30.0
RESTART = "Start it again with the scan page's Build model button (or POST the scan's " \
          "reconstruction again)."


def mark_interrupted(reconstruction_id: int, why: str) -> bool:
    """queued/running -> interrupted with a sentence; True when this call changed it."""
    changed = transition(Reconstruction, reconstruction_id, ReconstructionStatus.INTERRUPTED,
                         error=f"{why} {RESTART}", finished_at=utcnow(), eta_seconds=None)
    db.session.commit()
    if changed:
        log.warning("Reconstruction %s interrupted: %s", reconstruction_id, why)
    return changed


def recover_if_stale(row: Reconstruction) -> bool:
    """A running reconstruction without a heartbeat for STALE_SECONDS lost its job."""
    if row.status is not ReconstructionStatus.RUNNING:
        return False
    beat = row.heartbeat_at or row.started_at or row.created_at
    if utcnow() - beat < timedelta(seconds=STALE_SECONDS):
        return False
    if mark_interrupted(row.id, "The processing worker stopped answering while it built the "
                                "model."):
        db.session.refresh(row)
        return True
    return False


@on_horse_killed(RECONSTRUCTION_JOB)
def reconstruction_horse_killed(job: Any, how: str) -> None:
    if job.args:
        mark_interrupted(int(job.args[0]), f"The processing worker's job process {how}.")


class Heartbeat(threading.Thread):
    """Keeps heartbeat_at fresh while the job works; sets `gone` once the row is no longer
    running (cancelled, or deleted with its scan or session), which the job's checks read."""

    def __init__(self, app: Flask, reconstruction_id: int):
        super().__init__(name=f"reconstruction-{reconstruction_id}-heartbeat", daemon=True)
        self._app, self._id = app, reconstruction_id
        self._halt = threading.Event()
        self.gone = threading.Event()

    def beat(self) -> None:
        with db.engine.begin() as conn:
            result = conn.execute(
                update(Reconstruction)
                .where(Reconstruction.id == self._id,
                       Reconstruction.status == ReconstructionStatus.RUNNING)
                .values(heartbeat_at=utcnow()))
        if result.rowcount == 0:
            self.gone.set()

    def run(self) -> None:
        with self._app.app_context():
            while not self._halt.wait(HEARTBEAT_SECONDS):
                try:
                    self.beat()
                except Exception as exc:  # noqa: BLE001 - the next beat tries again
                    log.warning("Reconstruction %s: heartbeat failed: %s", self._id, exc)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)
