"""Uploads stuck in 'processing' with no run to finish them: the web process stopped between
committing the rows and queueing the job, Redis lost its data, a job was removed by hand, or
the run processing them died (its claim's lease ran out). Their files are safe in the
session; this queues them again.

An upload a live run holds (a claim whose lease it keeps renewing, upload_claims.py) is left
alone however long it takes, e.g. a big batch processed inside a web request while Redis was
down. Processing is safe to repeat: an upload already done is skipped, a half-done one is
reset by the run that claims it next.

Meant for the worker's maintenance round and `scanner doctor --repair`:
    recover_stuck_uploads(settings)   # inside an app context
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.worker import Worker
from sqlalchemy import select

from scanner_app.config import Settings
from scanner_app.models import Upload, UploadStatus
from scanner_app.platform.clock import utcnow
from scanner_app.platform.extensions import db
from scanner_app.platform.queues import UPLOAD_JOB, UPLOAD_JOBS, enqueue
from scanner_app.uploads.claims import (
    lease_cutoff,
    release_dead,
    release_expired,
    token_job_id,
    token_pid,
)

log = logging.getLogger("scanner.uploads")


def _ids_in(jobs: list[Job | None]) -> set[int]:
    ids: set[int] = set()
    for job in jobs:
        if job is None or job.func_name != UPLOAD_JOB or not job.args:
            continue
        ids.update(int(i) for i in job.args[0])
    return ids


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


class Liveness:
    """Is the run behind a claim (or a started job) still there? Answers "gone" only when
    sure: the job ended, or its worker (or the web process) on this machine has exited. When
    unsure it answers "alive", and the claim's lease decides, as before."""

    def __init__(self, connection: Redis):
        self.connection = connection
        self.host = socket.gethostname()
        self._jobs: dict[str, bool] = {}

    def worker_alive(self, name: str | None) -> bool:
        if not name:
            return True
        pid, host = self.connection.hmget(Worker.redis_worker_namespace_prefix + name,
                                          "pid", "hostname")
        if pid is None:
            return False  # its key expired: the worker stopped renewing it
        if host is None or host.decode() != self.host:
            return True
        return _pid_alive(int(pid))

    def job_alive(self, job_id: str) -> bool:
        if job_id not in self._jobs:
            try:
                job = Job.fetch(job_id, connection=self.connection)
            except NoSuchJobError:
                alive = False
            else:
                alive = (job.get_status() == JobStatus.STARTED
                         and self.worker_alive(job.worker_name))
            self._jobs[job_id] = alive
        return self._jobs[job_id]

    def token_alive(self, token: str) -> bool:
        job_id = token_job_id(token)
        if job_id is not None:
            return self.job_alive(job_id)
        pid = token_pid(token)
        return True if pid is None else _pid_alive(pid)


@dataclass
class StuckUploads:
    """Uploads 'processing' that nothing will finish: `held` by a run that is gone (or whose
    lease ran out), or `orphaned` (never claimed, in no live job)."""

    held: list[int] = field(default_factory=list)
    orphaned: list[int] = field(default_factory=list)

    @property
    def ids(self) -> list[int]:
        return sorted({*self.held, *self.orphaned})


def _job_ids(uploads_queue, liveness: Liveness) -> tuple[set[int], set[int]]:
    """Upload ids of (the jobs queued or started by a live worker, the started jobs whose
    worker is gone: killed with its work-horse, their uploads will never be reached)."""
    queued = _ids_in(uploads_queue.jobs)
    started = StartedJobRegistry(queue=uploads_queue).get_job_ids()
    jobs = [job for job in Job.fetch_many(started, connection=uploads_queue.connection) if job]
    live = [job for job in jobs if liveness.job_alive(job.id)]
    dead = [job for job in jobs if not liveness.job_alive(job.id)]
    return queued | _ids_in(live), _ids_in(dead)


def _disk_full(settings: Settings) -> bool:
    from scanner_app.platform.disk import free_bytes

    return free_bytes(settings.data_dir) < settings.disk_reserve_mb * 1024 * 1024


def find_stuck_uploads(settings: Settings, older_than: timedelta = timedelta(minutes=2)
                       ) -> StuckUploads:
    """What recover_stuck_uploads would queue again, changing nothing (for the doctor).
    Raises redis errors when the queue is down."""
    from scanner_app.platform.queues import UPLOADS_QUEUE, queue

    uploads_queue = queue(settings, UPLOADS_QUEUE)
    liveness = Liveness(uploads_queue.connection)
    rows = db.session.execute(select(Upload.id, Upload.claim_token, Upload.claimed_at,
                                     Upload.created_at)
                              .where(Upload.status == UploadStatus.PROCESSING)
                              .order_by(Upload.id)).all()
    db.session.commit()
    stuck = StuckUploads()
    if not rows:
        return stuck
    live, dead = _job_ids(uploads_queue, liveness)
    expiry, cutoff = lease_cutoff(), utcnow() - older_than
    for upload_id, token, claimed_at, created_at in rows:
        if token is not None:
            if claimed_at is None or claimed_at < expiry or not liveness.token_alive(token):
                stuck.held.append(upload_id)
        elif upload_id not in live and (created_at < cutoff or upload_id in dead):
            stuck.orphaned.append(upload_id)
    return stuck


def recover_stuck_uploads(settings: Settings, older_than: timedelta = timedelta(minutes=2),
                          retry: Iterable[int] = ()) -> list[int]:
    """Queue again every upload 'processing' that no run holds and no job will pick up:
    - claimed, but the claim's lease ran out (the run died or stalled) or its run is gone
      (Liveness): released and queued, unless a queued job already lists it;
    - never claimed, in no queued job nor one a live worker runs, and older than `older_than`
      or listed in a job whose worker is gone or in `retry` (a killed run never reached it).
    Nothing is queued while the disk is below its reserve (a full disk would fail them
    again): a later round queues them once space is freed. Returns the queued ids. Raises
    redis errors when the queue is down (released claims are then queued by a later round:
    they are unclaimed and old by then)."""
    from scanner_app.platform.queues import UPLOADS_QUEUE, queue

    uploads_queue = queue(settings, UPLOADS_QUEUE)
    liveness = Liveness(uploads_queue.connection)
    released = set(release_expired()) | set(release_dead(liveness.token_alive))
    cutoff = utcnow() - older_than
    unclaimed = dict(db.session.execute(
        select(Upload.id, Upload.created_at).where(Upload.status == UploadStatus.PROCESSING,
                                                   Upload.claim_token.is_(None))).all())
    db.session.commit()
    if not unclaimed or _disk_full(settings):
        if unclaimed:
            log.warning("Uploads %s wait for free space before they are processed again",
                        sorted(unclaimed))
        return []
    queued = _ids_in(uploads_queue.jobs)
    live, dead = _job_ids(uploads_queue, liveness)
    running = live - queued
    # A released claim is the truth about its run: it stopped renewing, so a job still listed
    # as running no longer works on it (if it wakes up, it finds its claim gone and stops).
    due = {i for i, created in unclaimed.items() if created < cutoff or i in dead}
    # `retry` comes from the worker handling the killed job, which RQ still lists as running.
    orphans = sorted(((released | (set(retry) & set(unclaimed))) - queued)
                     | (due - released - queued - running))
    if orphans:
        enqueue(settings, UPLOAD_JOBS, orphans, connection=uploads_queue.connection,
                description=f"Recover uploads {orphans[0]}..{orphans[-1]}")
        log.warning("Uploads %s were left processing without a live run; queued them again",
                    orphans)
    return orphans
