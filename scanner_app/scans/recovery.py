"""Crash recovery of scans: which queued, running or paused scans lost their job or worker,
and marking them `interrupted` so they can be resumed from their next frame.

Used lazily by whoever looks at a scan (services/scans.py), by the worker at startup and in
its maintenance rounds, where the web server starts, and by `scanner doctor --repair`.
Every mark is a conditional UPDATE: a job that just showed a sign of life wins the race.
"""

from __future__ import annotations

import logging
import socket
import threading
from datetime import datetime

import sqlalchemy as sa
from flask import Flask
from redis import Redis
from redis.exceptions import RedisError
from rq.job import JobStatus
from sqlalchemy import select, update

from scanner_app.config import Settings, current_settings
from scanner_app.models import (
    SCAN_ACTIVE,
    SCAN_UNDER_WAY,
    Capture,
    Scan,
    ScanStatus,
    transition,
)
from scanner_app.platform.clock import utcnow
from scanner_app.platform.extensions import db
from scanner_app.platform.processes import process_alive
from scanner_app.platform.queues import redis_connection
from scanner_app.platform.storage import current_storage
from scanner_app.scans.kept_frames import frames_kept_sentence
from scanner_app.scans.metadata import consolidate

log = logging.getLogger("scanner.scans")

# Liveness. The job writes heartbeat_at at every frame and every HEARTBEAT_SECONDS from a
# thread. Younger than ALIVE_SECONDS: alive, nothing to check. Older than STALE_SECONDS: the
# job is gone, whatever RQ says. In between, RQ's view decides (the job's process on this
# machine is gone, or RQ says the job ended).
HEARTBEAT_SECONDS = 3.0
ALIVE_SECONDS = 8.0
STALE_SECONDS = 25.0
# A queued scan's job may legitimately not exist for a moment around enqueueing.
QUEUED_GRACE_SECONDS = 30.0
# RQ's own job states (not a scan's status).
_ENDED_JOB_STATES = (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)


class Heartbeat(threading.Thread):
    """Run by the scan job: keeps heartbeat_at fresh while it is busy between frames
    (homing, a long move, a pause, the export), so recovery can tell a slow scan from a dead
    one. Only while the scan is still running or paused under `job_id`."""

    def __init__(self, app: Flask, scan_id: int, job_id: str | None):
        super().__init__(name=f"scan-{scan_id}-heartbeat", daemon=True)
        self._app, self._scan_id, self._job_id = app, scan_id, job_id
        self._halt = threading.Event()

    def run(self) -> None:
        with self._app.app_context():
            while not self._halt.wait(HEARTBEAT_SECONDS):
                where = [Scan.id == self._scan_id, Scan.status.in_(SCAN_UNDER_WAY)]
                if self._job_id:
                    where.append(Scan.rq_job_id == self._job_id)
                try:
                    with db.engine.begin() as conn:
                        conn.execute(update(Scan).where(*where).values(heartbeat_at=utcnow()))
                except Exception as exc:  # noqa: BLE001 - the next beat tries again
                    log.warning("Scan %s: heartbeat failed: %s", self._scan_id, exc)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


def last_sign_of_life(scan: Scan) -> datetime:
    return scan.heartbeat_at or scan.started_at or scan.created_at


def recently_alive(scan: Scan, now: datetime | None = None) -> bool:
    """Whether the scan's job showed a sign of life so recently that nothing needs checking."""
    age = ((now or utcnow()) - last_sign_of_life(scan)).total_seconds()
    return age < ALIVE_SECONDS


class _RqView:
    """What RQ knows about a scan's job, as one of:
    None        Redis cannot be asked (judge by heartbeats alone)
    "missing"   no such job (Redis lost it)
    "ended"     RQ says it finished, failed or was stopped
    "dead"      it was started by a process on this machine that no longer exists
    "here"      it runs in a live process on this machine
    "started"   started somewhere we cannot check (another machine, or no pid yet)
    "waiting"   still in the queue
    """

    def __init__(self, settings: Settings):
        self._settings = settings
        self._connection: Redis | None = None
        self._down = False
        self.started_at: dict[str, datetime | None] = {}

    def state(self, job_id: str | None) -> str | None:
        if not job_id or self._down:
            return None
        from rq.exceptions import NoSuchJobError
        from rq.job import Job

        try:
            if self._connection is None:
                self._connection = redis_connection(self._settings)
            try:
                job = Job.fetch(job_id, connection=self._connection)
            except NoSuchJobError:
                return "missing"
            status = job.get_status(refresh=False)
            status = str(getattr(status, "value", status))
        except (RedisError, OSError) as exc:
            log.info("Cannot ask Redis about job %s (%s); judging by heartbeats only", job_id,
                     exc)
            self._down = True
            return None
        if status in _ENDED_JOB_STATES:
            return "ended"
        if status != "started":
            return "waiting"
        started = job.started_at
        self.started_at[job_id] = (started.replace(tzinfo=None) if started and started.tzinfo
                                   else started)
        meta = job.meta or {}
        pid, host = meta.get("pid"), meta.get("host")
        if isinstance(pid, int) and host == socket.gethostname():
            return "here" if process_alive(pid) else "dead"
        return "started"


def _interrupted_message(scan: Scan, why: str) -> str:
    return f"{why} " + frames_kept_sentence(scan.frames_captured, scan.frames_planned,
                                            with_total=True)


def _why_stale(scan: Scan, now: datetime, rq: _RqView) -> str | None:
    """A sentence saying why the scan's job is gone, or None while it may be alive."""
    age = (now - last_sign_of_life(scan)).total_seconds()
    if scan.status.is_under_way:
        if age < ALIVE_SECONDS:
            return None
        state = rq.state(scan.rq_job_id)
        if state == "here":
            return None  # slow (a database lock?), not dead: its process is still there
        if state in ("dead", "ended") or age >= STALE_SECONDS:
            return (f"The worker running this scan stopped (no sign of life for "
                    f"{int(age)} seconds).")
        return None
    # queued: the job may not have been picked up yet; only a lost or dead job counts.
    if age < QUEUED_GRACE_SECONDS:
        return None
    state = rq.state(scan.rq_job_id)
    if state == "missing":
        return "The scan's job was lost from the queue (was Redis restarted?)."
    started = rq.started_at.get(scan.rq_job_id or "")
    if state in ("dead", "ended") or (
            state == "started" and started is not None
            and (now - started).total_seconds() >= STALE_SECONDS):
        return "The worker that picked up this scan stopped before it began."
    return None


def reconcile_stale_scans(scan_ids: list[int] | None = None) -> list[int]:
    """Mark active scans whose job or worker is gone as `interrupted`; returns their ids.

    Safe to call from any process at any time: the UPDATE only matches while the scan
    still has the heartbeat it was judged by, so a job that just showed a sign of life wins.
    """
    query = select(Scan).where(Scan.status.in_(SCAN_ACTIVE))
    if scan_ids is not None:
        query = query.where(Scan.id.in_(scan_ids))
    scans = list(db.session.scalars(query))
    if not scans:
        return []
    now = utcnow()
    rq = _RqView(current_settings())
    marked: list[int] = []
    for scan in scans:
        why = _why_stale(scan, now, rq)
        if why is None:
            continue
        same_heartbeat = (Scan.heartbeat_at.is_(None) if scan.heartbeat_at is None
                          else Scan.heartbeat_at == scan.heartbeat_at)
        if transition(Scan, scan.id, ScanStatus.INTERRUPTED, from_=scan.status,
                      where=[same_heartbeat], control=None, message=None,
                      error=_interrupted_message(scan, why)):
            marked.append(scan.id)
            log.warning("Scan %s marked interrupted: %s", scan.id, why)
    db.session.commit()
    for scan in scans:
        if scan.id in marked:
            db.session.refresh(scan)
            consolidate_metadata(scan)
    return marked


def mark_interrupted(scan_id: int, job_id: str | None, why: str) -> bool:
    """For the worker when it sees its work-horse die: interrupt the scan that job ran."""
    scan = db.session.get(Scan, scan_id)
    if scan is None or not scan.status.is_active:
        db.session.rollback()
        return False
    marked = transition(Scan, scan_id, ScanStatus.INTERRUPTED, from_=SCAN_ACTIVE,
                        where=[Scan.rq_job_id == job_id] if job_id else [],
                        control=None, message=None, error=_interrupted_message(scan, why))
    db.session.commit()
    if marked:
        log.warning("Scan %s marked interrupted: %s", scan_id, why)
        db.session.refresh(scan)
        consolidate_metadata(scan)
        return True
    return False


def consolidate_metadata(scan: Scan) -> None:
    """A run that died never consolidated its metadata: fold its frames log into
    metadata/scans/<id>.json, keeping only the frames the database recorded, so the file is
    complete for the interrupted scan. A file that cannot be written is logged (the log stays;
    the resumed run folds it in)."""
    recorded = set(db.session.scalars(
        select(Capture.frame_index).where(Capture.scan_id == scan.id,
                                          Capture.frame_index.is_not(None))))
    scan_dict = scan.to_dict()
    db.session.commit()
    store = current_storage()
    try:
        consolidate(store.scan_metadata_path(scan.session_id, scan.id),
                    store.scan_frames_log_path(scan.session_id, scan.id), scan_dict, recorded)
    except OSError as exc:
        log.warning("Scan %s: could not consolidate its metadata: %s", scan.id, exc)


def reconcile_at_startup(app: Flask) -> None:
    """Called where the web server starts (the worker reconciles on its own): recover scans
    left 'running' by a dead worker. Not in create_app, so a CLI command such as `scanner
    doctor` sees the station as it was. Silent on a database without tables yet (before
    `scanner db upgrade`) or one that is unreachable."""
    try:
        with app.app_context():
            if not sa.inspect(db.engine).has_table(Scan.__tablename__):
                return
            reconcile_stale_scans()
    except Exception as exc:  # noqa: BLE001 - startup must not fail because of this
        log.warning("Could not check for interrupted scans at startup: %s", exc)
