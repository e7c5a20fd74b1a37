"""Reconstructions: the one way to start, look at and cancel a scan's model, and what other
slices call (the session hooks below: deleting a session cancels its reconstructions and
leaves no files; a merge moves them with their scans).

Who changes what: the API inserts rows (queued) and cancels; the job (reconstruction/job.py)
claims a row (running) and ends it; recovery marks a dead job's row interrupted. Every change
is a conditional UPDATE (models/transitions.py).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from flask import url_for
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from scanner_app.config import current_settings
from scanner_app.models import (
    RECONSTRUCTION_ACTIVE,
    Reconstruction,
    ReconstructionStatus,
    Scan,
    ScanStatus,
    transition,
)
from scanner_app.platform import queues
from scanner_app.platform.clock import utcnow
from scanner_app.platform.errors import Conflict, NotFound, ServiceUnavailable
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import current_storage
from scanner_app.reconstruction.recovery import recover_if_stale
from scanner_app.scans import hooks as scan_hooks
from scanner_app.scans.service import get_scan, job_profile
from scanner_app.sessions import hooks

log = logging.getLogger("scanner.reconstruction")

QUEUE_UNAVAILABLE = ("The job queue (Redis) is not reachable, so the model was not started. "
                     "Start the station with 'scanner run' or check SCANNER_REDIS_URL.")


# --- reading ---------------------------------------------------------------------------

def get_reconstruction(reconstruction_id: int) -> Reconstruction:
    row = db.session.get(Reconstruction, reconstruction_id)
    if row is None:
        raise NotFound(f"There is no reconstruction {reconstruction_id}. Open the scan's page "
                       "to see its model.")
    recover_if_stale(row)  # lazy recovery: whoever looks sees a dead job interrupted
    return row


def latest_for_scan(scan_id: int) -> Reconstruction | None:
    row = db.session.scalar(select(Reconstruction).where(Reconstruction.scan_id == scan_id)
                            .order_by(Reconstruction.id.desc()).limit(1))
    if row is not None:
        recover_if_stale(row)
    return row


def outputs_dir(row: Reconstruction) -> Path:
    return current_storage().reconstruction_dir(row.session_id, row.scan_id)


def _is_current(row: Reconstruction) -> bool:
    """Whether the scan's model folder holds this reconstruction's files (a later completed
    one replaces them)."""
    if row.status is not ReconstructionStatus.COMPLETED:
        return False
    newest = db.session.scalar(
        select(Reconstruction.id).where(Reconstruction.scan_id == row.scan_id,
                                        Reconstruction.status ==
                                        ReconstructionStatus.COMPLETED)
        .order_by(Reconstruction.id.desc()).limit(1))
    return newest == row.id


def output_path(row: Reconstruction, name: str) -> Path:
    """The file of output `name`, or NotFound saying why not."""
    if name not in row.output_names:
        raise NotFound(f"Reconstruction {row.id} has no output {name!r}.")
    if not _is_current(row):
        raise NotFound(f"The files of reconstruction {row.id} were replaced by a newer model "
                       "of the same scan; download that one.")
    path = outputs_dir(row) / name
    if not path.is_file():
        raise NotFound(f"The file {name} of reconstruction {row.id} is missing; build the "
                       "model again.")
    return path


def reconstruction_json(row: Reconstruction) -> dict[str, Any]:
    """The Reconstruction object of the API: the row and its outputs as {name: url}."""
    outputs = {}
    if _is_current(row):
        outputs = {name: url_for("api_reconstruction.output", reconstruction_id=row.id,
                                 name=name) for name in row.output_names}
    return {**row.to_dict(), "outputs": outputs}


# --- starting and cancelling -----------------------------------------------------------

def _active_conflict(scan_id: int) -> Conflict:
    active = db.session.scalar(select(Reconstruction).where(
        Reconstruction.scan_id == scan_id, Reconstruction.status.in_(RECONSTRUCTION_ACTIVE)))
    what = (f"Reconstruction {active.id} of scan {scan_id} is already {active.status}"
            if active else f"A reconstruction of scan {scan_id} was started at the same moment")
    return Conflict(f"{what}. Wait for it to finish or cancel it, then try again.",
                    code="reconstruction_active")


def start_reconstruction(scan_id: int) -> Reconstruction:
    """Queue a reconstruction of a completed scan: 409 while the scan is not completed or one
    is queued or running for it; 503 when the queue is unreachable (nothing is left behind)."""
    scan: Scan = get_scan(scan_id)
    if scan.status is not ScanStatus.COMPLETED:
        raise Conflict(f"Scan {scan.id} is {scan.status}; a model can be built once the scan "
                       "has completed.", code="scan_not_completed")
    current = latest_for_scan(scan.id)
    if current is not None and current.status.is_active:
        raise _active_conflict(scan.id)
    settings = current_settings()
    connection = queues.redis_connection(settings)
    queues.require_queue(connection, QUEUE_UNAVAILABLE)
    row = Reconstruction(scan_id=scan.id, session_id=scan.session_id,
                         status=ReconstructionStatus.QUEUED, stage="queued", percent=0.0)
    db.session.add(row)
    try:
        db.session.flush()  # the partial unique index is the real guard against a race
        row.rq_job_id = f"reconstruction-{row.id}"
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise _active_conflict(scan.id) from None
    try:
        queues.enqueue(settings, queues.RECONSTRUCTION_JOBS, row.id, connection=connection,
                       job_id=row.rq_job_id,
                       description=f"Reconstruction {row.id} of scan {scan.id}")
    except queues.QUEUE_ERRORS as exc:
        log.warning("Could not enqueue reconstruction %s: %s", row.id, exc)
        row_id = row.id
        db.session.rollback()
        db.session.execute(delete(Reconstruction).where(Reconstruction.id == row_id))
        db.session.commit()
        raise ServiceUnavailable(QUEUE_UNAVAILABLE, code="queue_unavailable") from None
    log.info("Reconstruction %s of scan %s queued", row.id, scan.id)
    return row


def cancel_reconstruction(reconstruction_id: int) -> Reconstruction:
    """Queued: cancelled at once. Running: cancelled now; the job stops at its next check
    (between stages and inside their loops) and removes what it had made."""
    row = get_reconstruction(reconstruction_id)
    if not row.status.can_cancel:
        raise Conflict(f"Reconstruction {row.id} is already {row.status}; there is nothing to "
                       "cancel.", code="invalid_transition")
    was = row.status
    changed = transition(Reconstruction, row.id, ReconstructionStatus.CANCELLED, from_=was,
                         finished_at=utcnow(), eta_seconds=None,
                         error="Cancelled by request.")
    db.session.commit()
    db.session.refresh(row)
    if not changed:
        raise Conflict(f"Reconstruction {row.id} changed while your request was handled; it "
                       f"is now {row.status}. Look at it again.", code="reconstruction_changed")
    if was is ReconstructionStatus.QUEUED:
        _cancel_job(row.rq_job_id)
    log.info("Reconstruction %s cancelled while %s", row.id, was)
    return row


def _cancel_job(job_id: str | None) -> None:
    """Best effort: the job also checks its row's status when it starts."""
    if not job_id:
        return
    try:
        from rq.job import Job

        Job.fetch(job_id, connection=queues.redis_connection(current_settings())).cancel()
    except Exception as exc:  # noqa: BLE001 - a job we cannot cancel exits on its own
        log.info("Could not cancel RQ job %s (%s); it will see the row is cancelled", job_id,
                 exc)


@scan_hooks.after_scan_completed
def start_if_profile_asks(scan_id: int) -> None:
    """In the scan worker, once a scan completed: a profile with `auto_reconstruct = true`
    queues its model. A refusal (one already queued, the queue down) is logged, never raised:
    the scan is complete either way and the model can be started from its page."""
    scan = db.session.get(Scan, scan_id)
    if scan is None:
        return
    # The profile the scan started with (its copy), not one edited since.
    profile = job_profile(scan, current_settings())
    if profile.name != scan.profile or not profile.auto_reconstruct:
        return  # a profile that left the config since asks for nothing
    try:
        row = start_reconstruction(scan_id)
    except (Conflict, ServiceUnavailable, NotFound) as exc:
        db.session.rollback()
        log.warning("Scan %s: its profile %s asks for a model, but it was not started: %s",
                    scan_id, profile.name, exc)
        return
    log.info("Scan %s: reconstruction %s queued automatically (profile %s)", scan_id, row.id,
             profile.name)


# --- what happens to a session happens to its reconstructions ---------------------------

@hooks.before_delete
def delete_with_session(session_id: int) -> None:
    """Inside the session's delete: its reconstructions go with it (a running job sees its
    row gone at its next heartbeat, stops and removes its work folder; the model folder is
    inside the session's folder, which the delete removes)."""
    jobs = list(db.session.scalars(select(Reconstruction.rq_job_id).where(
        Reconstruction.session_id == session_id,
        Reconstruction.status == ReconstructionStatus.QUEUED)))
    db.session.execute(delete(Reconstruction).where(Reconstruction.session_id == session_id))
    for job_id in jobs:
        _cancel_job(job_id)


@hooks.after_merge
def follow_merged_scans(target_session_id: int, _moved: list[Path]) -> None:
    """The merged scans' reconstructions now belong to the target session too."""
    db.session.execute(
        update(Reconstruction)
        .where(Reconstruction.scan_id.in_(select(Scan.id).where(
            Scan.session_id == target_session_id)))
        .values(session_id=target_session_id))
    db.session.commit()


def remove_work_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
