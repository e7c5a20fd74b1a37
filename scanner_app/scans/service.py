"""Scans: the one way to start, pause, resume and cancel a scan, and its progress.

Who changes what: the API (this module) inserts scans and sets `control`; the job
(jobs/scan_job.py) owns the running <-> paused transitions and the final status; recovery
(services/scan_recovery.py, re-exported here) marks scans whose job died as `interrupted`.
Every transition is a conditional UPDATE, so two processes racing for the same scan never
both win.
"""

from __future__ import annotations

import logging
import statistics
import time

from redis import Redis
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from scanner_app.config import Settings, current_settings
from scanner_app.models import (
    SCAN_ACTIVE,
    SCAN_UNDER_WAY,
    Capture,
    Scan,
    ScanSession,
    ScanStatus,
    transition,
    update_while,
)
from scanner_app.platform import queues
from scanner_app.platform.clock import utcnow
from scanner_app.platform.disk import check_scan_space
from scanner_app.platform.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from scanner_app.platform.extensions import db
from scanner_app.platform.queues import redis_connection
from scanner_app.scans.calibration_run import (  # the station's calibration page uses these
    CalibrationRunStatus,
    calibration_run,
    current_rig_calibration,
    refuse_while_calibrating,
    start_calibration,
)
from scanner_app.scans.kept_frames import next_frame
from scanner_app.scans.path import plan_path, require_operator, ring_progress
from scanner_app.scans.preview_plate import BackgroundPlate, background_plate  # rig preview
from scanner_app.scans.profiles import (  # the settings page and the dashboard use these
    default_profile_name,
    effective_profiles,
    job_profile,
    profile_for,
    profile_json,
    profile_snapshot,
    profiles_json,
    reset_profile,
    save_profile,
    set_default_profile,
    snapshot_profile,
)
from scanner_app.scans.reading import active_scan, get_scan, list_scans
from scanner_app.scans.recovery import (
    HEARTBEAT_SECONDS,
    QUEUED_GRACE_SECONDS,
    STALE_SECONDS,
    mark_interrupted,
    reconcile_at_startup,
    reconcile_stale_scans,
)
from scanner_app.sessions.counters import bump_session_counters
from scanner_app.sessions.resolver import resolve_session

__all__ = [
    "BackgroundPlate", "CalibrationRunStatus", "HEARTBEAT_SECONDS", "MAX_FRAMES",
    "QUEUED_GRACE_SECONDS", "SOURCES", "STALE_SECONDS", "active_scan", "background_plate",
    "calibration_run", "cancel_scan",
    "current_rig_calibration", "default_profile_name", "effective_profiles", "get_scan",
    "job_profile", "list_scans", "mark_interrupted", "next_frame", "pause_scan",
    "profile_for", "profile_json", "profiles_json", "reconcile_at_startup",
    "reconcile_stale_scans", "reset_profile", "resume_scan", "save_profile", "scan_json",
    "scan_progress", "set_default_profile", "start_calibration", "start_scan",
]

log = logging.getLogger("scanner.scans")

SOURCES = ("web", "api", "button")
MAX_FRAMES = 720  # half a degree apart; more is a typo, not a scan

QUEUE_UNAVAILABLE = (
    "The job queue (Redis) is not reachable, so the scan was not started. "
    "Start the station with 'scanner run' or check SCANNER_REDIS_URL."
)
QUEUE_UNAVAILABLE_RESUME = (
    "The job queue (Redis) is not reachable, so the scan was not resumed. "
    "Start the station with 'scanner run' or check SCANNER_REDIS_URL."
)


# --- reading ---------------------------------------------------------------------------

def _seconds_per_frame(scan: Scan) -> float | None:
    """Measured time per frame: median gap between the latest frames (a pause in between
    does not distort it), or start-to-first-frame when there is only one."""
    times = list(db.session.scalars(
        select(Capture.taken_at).where(Capture.scan_id == scan.id, Capture.taken_at.is_not(None))
        .order_by(Capture.taken_at.desc()).limit(8)
    ))
    if len(times) >= 2:
        gaps = [(a - b).total_seconds() for a, b in zip(times, times[1:], strict=False)]
        return max(0.0, statistics.median(gaps))
    if len(times) == 1 and scan.started_at is not None:
        return max(0.0, (times[0] - scan.started_at).total_seconds())
    return None


def scan_progress(scan: Scan) -> dict:
    """frames_captured, frames_planned, percent, current_angle, eta_seconds (None while
    unknown: queued, paused, or no frame measured yet), and the ring it is on (scans/path.py
    ring_progress); the ETA covers every ring still to take."""
    planned = scan.frames_planned or 0
    captured = scan.frames_captured or 0
    eta: int | None = None
    if scan.status is ScanStatus.COMPLETED:
        eta = 0
    elif scan.status.is_running and captured < planned:
        per_frame = _seconds_per_frame(scan)
        if per_frame is not None:
            eta = round(per_frame * (planned - captured))
    return {
        "frames_captured": captured,
        "frames_planned": planned,
        "percent": round(100.0 * captured / planned, 1) if planned else 0.0,
        "current_angle": scan.current_angle,
        "eta_seconds": eta,
        **ring_progress(scan.path, planned, captured),
    }


def scan_json(scan: Scan) -> dict:
    """The Scan object of the API: the row plus its progress."""
    return {**scan.to_dict(), **scan_progress(scan)}


# --- starting --------------------------------------------------------------------------

def _active_conflict(scan: Scan | None) -> Conflict:
    if scan is None:
        return Conflict("Another scan was started at the same moment. Wait for it to finish "
                        "or cancel it, then try again.", code="scan_active")
    if scan.status is ScanStatus.PAUSED:
        what = f"Scan {scan.id} is paused. Resume or cancel it before starting another scan."
    elif scan.status is ScanStatus.QUEUED:
        what = (f"Scan {scan.id} is queued and about to start. Wait for it to finish or "
                "cancel it before starting another scan.")
    else:
        what = (f"Scan {scan.id} is still running ({scan.frames_captured} of "
                f"{scan.frames_planned} frames taken). Wait for it to finish or cancel it "
                "before starting another scan.")
    return Conflict(what, code="scan_active")


def _session_gone(session_id: int) -> NotFound:
    return NotFound(f"Session {session_id} was deleted or merged into another session while "
                    "the scan was being started, so the scan was not started. Pick a session "
                    "and start the scan again.")


def _enqueue(scan: Scan, connection: Redis, settings: Settings) -> None:
    queues.enqueue(settings, queues.SCAN_JOBS, scan.id, connection=connection,
                   job_id=scan.rq_job_id,
                   description=f"Scan {scan.id}: {scan.frames_planned} frames, "
                               f"session {scan.session_id}")


def start_scan(
    requested_session_id: int | None,
    *,
    profile: str | None = None,
    frames: int | None = None,
    source: str = "api",
    rings: object = None,
    turn_over: object = None,
    browser: bool = False,
    snapshot: bool = False,
) -> Scan:
    """Validate, refuse while another scan is active or the disk is too full, resolve the
    session (once), insert the scan and enqueue its job. The web, the API and the button
    all start scans here. `rings` (a list of {elevation_deg, frames}) replaces `frames`;
    `browser`: the request comes from a signed-in person who can continue a guided scan;
    `snapshot`: one frame, shown as a snapshot (profiles.SNAPSHOT_PROFILE), not as a scan."""
    settings = current_settings()
    if source not in SOURCES:
        raise BadRequest(f"Unknown scan source {source!r}; use one of {', '.join(SOURCES)}.")
    chosen = snapshot_profile(settings) if snapshot else profile_for(profile, settings)
    path = plan_path(settings, chosen, frames=frames, rings=rings, turn_over=turn_over)
    require_operator(path, settings, source=source, browser=browser)
    planned = path.total_frames
    if (current := active_scan()) is not None:
        raise _active_conflict(current)
    refuse_while_calibrating(settings)
    check_scan_space(settings, chosen, planned)
    connection = redis_connection(settings)
    # Before the resolver: a refusal leaves nothing behind.
    queues.require_queue(connection, QUEUE_UNAVAILABLE)

    session_id = resolve_session(requested_session_id)
    # The counter first: it locks the session row before the scan row is inserted, in the
    # order a delete or merge takes its locks, so a start racing them never deadlocks.
    if not bump_session_counters(session_id, scans_count=1):
        db.session.rollback()
        raise _session_gone(session_id)
    scan = Scan(session_id=session_id, status=ScanStatus.QUEUED, profile=chosen.name,
                profile_snapshot=profile_snapshot(chosen), frames_planned=planned,
                frames_captured=0, source=source, path=path.to_json(), heartbeat_at=utcnow())
    db.session.add(scan)
    try:
        db.session.flush()  # the partial unique index uq_scans_one_active is the real guard
        scan.rq_job_id = f"scan-{scan.id}"
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        # Two causes: another scan won the one-active-scan index, or the session was deleted
        # or merged away between the resolver and this insert (its foreign key failed).
        if db.session.get(ScanSession, session_id) is None:
            db.session.rollback()
            raise _session_gone(session_id) from None
        raise _active_conflict(active_scan()) from None

    try:
        _enqueue(scan, connection, settings)
    except queues.QUEUE_ERRORS as exc:
        # Nothing may stay 'queued' without a job: remove the row and undo the counter.
        log.warning("Could not enqueue scan %s: %s", scan.id, exc)
        scan_id = scan.id
        db.session.rollback()
        db.session.execute(delete(Scan).where(Scan.id == scan_id))
        bump_session_counters(session_id, scans_count=-1)
        db.session.commit()
        raise ServiceUnavailable(QUEUE_UNAVAILABLE, code="queue_unavailable") from None
    log.info("Scan %s queued: %s frames (%s) in session %s, from %s",
             scan.id, planned, chosen.name, session_id, source)
    return scan


# --- control ---------------------------------------------------------------------------

# Pausing is asked of the job, so only a scan it will still run can be asked.
_PAUSABLE = tuple(status for status in ScanStatus if status.can_pause)


def _applied(scan: Scan, changed: bool) -> bool:
    """Commit the conditional UPDATE (a transition or a request) just made to `scan`, show
    the row as it is now on `scan`, and pass on whether the UPDATE matched."""
    db.session.commit()
    db.session.refresh(scan)
    return changed


def _changed_meanwhile(scan: Scan) -> Conflict:
    return Conflict(f"Scan {scan.id} changed while your request was handled; it is now "
                    f"{scan.status}. Look at it again and retry.", code="scan_changed")


def pause_scan(scan_id: int) -> Scan:
    """Ask the job to pause before its next frame (a queued scan pauses as it starts)."""
    scan = get_scan(scan_id)
    if scan.status is ScanStatus.PAUSED or scan.control == "pause":
        raise Conflict(f"Scan {scan.id} is already paused or pausing. Resume or cancel it.",
                       code="invalid_transition")
    if scan.control == "cancel":
        raise Conflict(f"Scan {scan.id} is being cancelled and cannot be paused.",
                       code="invalid_transition")
    if not scan.status.can_pause:
        raise Conflict(f"Scan {scan.id} is {scan.status}; only a queued or running scan can "
                       "be paused.", code="invalid_transition")
    if not _applied(scan, update_while(Scan, scan.id, _PAUSABLE, where=[Scan.control.is_(None)],
                                       control="pause")):
        raise _changed_meanwhile(scan)
    log.info("Scan %s: pause requested", scan.id)
    return scan


def resume_scan(scan_id: int) -> Scan:
    """Continue a paused scan, or re-enqueue an interrupted one from its next frame."""
    scan = get_scan(scan_id)
    if scan.status.is_interrupted:
        return _requeue(scan)
    if scan.control == "pause" and scan.status.is_active:
        # The job notices between frames and goes back to running.
        if not _applied(scan, update_while(Scan, scan.id, SCAN_ACTIVE,
                                           where=[Scan.control == "pause"], control=None)):
            raise _changed_meanwhile(scan)
        log.info("Scan %s: resume requested", scan.id)
        return scan
    if scan.status.is_active:
        raise Conflict(f"Scan {scan.id} is {scan.status}, not paused; there is nothing to "
                       "resume.", code="invalid_transition")
    raise Conflict(f"Scan {scan.id} is {scan.status} and cannot be resumed; start a new scan "
                   "instead.", code="invalid_transition")


def _requeue(scan: Scan) -> Scan:
    settings = current_settings()
    if (current := active_scan()) is not None:
        raise _active_conflict(current)
    refuse_while_calibrating(settings)
    remaining = max(0, scan.frames_planned - scan.frames_captured)
    check_scan_space(settings, job_profile(scan, settings), remaining)
    connection = redis_connection(settings)
    queues.require_queue(connection, QUEUE_UNAVAILABLE_RESUME)

    previous = {"error": scan.error, "rq_job_id": scan.rq_job_id}
    job_id = f"scan-{scan.id}-resume-{int(time.time() * 1000)}"
    try:
        matched = _applied(scan, transition(
            Scan, scan.id, ScanStatus.QUEUED, from_=ScanStatus.INTERRUPTED, control=None,
            error=None, finished_at=None, rq_job_id=job_id, heartbeat_at=utcnow()))
    except IntegrityError:
        db.session.rollback()
        raise _active_conflict(active_scan()) from None
    if not matched:
        raise _changed_meanwhile(scan)
    try:
        _enqueue(scan, connection, settings)
    except queues.QUEUE_ERRORS as exc:
        log.warning("Could not enqueue resumed scan %s: %s", scan.id, exc)
        _applied(scan, transition(Scan, scan.id, ScanStatus.INTERRUPTED, from_=ScanStatus.QUEUED,
                                  where=[Scan.rq_job_id == job_id], **previous))
        raise ServiceUnavailable(QUEUE_UNAVAILABLE_RESUME, code="queue_unavailable") from None
    log.info("Scan %s: resumed from frame %s of %s", scan.id, scan.frames_captured + 1,
             scan.frames_planned)
    return scan


def cancel_scan(scan_id: int) -> Scan:
    """A queued or interrupted scan is cancelled at once; a running or paused one stops
    before its next frame. Frames already taken are kept."""
    scan = get_scan(scan_id)
    if scan.status in (ScanStatus.QUEUED, ScanStatus.INTERRUPTED):  # no job runs it
        was = scan.status
        if _applied(scan, transition(Scan, scan.id, ScanStatus.CANCELLED, from_=was,
                                     control=None, message=None, finished_at=utcnow())):
            if was is ScanStatus.QUEUED:
                _cancel_job(scan.rq_job_id)
            log.info("Scan %s cancelled while %s", scan.id, was)
            return scan
        # It started meanwhile: cancel it like a running one.
    if scan.status.is_under_way:
        if not _applied(scan, update_while(Scan, scan.id, SCAN_UNDER_WAY, control="cancel")):
            raise _changed_meanwhile(scan)
        log.info("Scan %s: cancel requested", scan.id)
        return scan
    raise Conflict(f"Scan {scan.id} is already {scan.status}; there is nothing to cancel.",
                   code="invalid_transition")


def _cancel_job(job_id: str | None) -> None:
    """Best effort: the job also checks the scan's status when it starts."""
    if not job_id:
        return
    try:
        from rq.job import Job

        Job.fetch(job_id, connection=redis_connection(current_settings())).cancel()
    except Exception as exc:  # noqa: BLE001 - a job we cannot cancel exits on its own
        log.info("Could not cancel RQ job %s (%s); it will see the scan is cancelled", job_id,
                 exc)
