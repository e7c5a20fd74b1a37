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
from datetime import timedelta

from rq.job import Job
from rq.registry import StartedJobRegistry
from sqlalchemy import select

from scanner_app.config import Settings
from scanner_app.models import Upload
from scanner_app.platform.clock import utcnow
from scanner_app.platform.extensions import db
from scanner_app.platform.queues import UPLOAD_JOB
from scanner_app.uploads.claims import release_expired

log = logging.getLogger("scanner.uploads")


def _ids_in(jobs: list[Job | None]) -> set[int]:
    ids: set[int] = set()
    for job in jobs:
        if job is None or job.func_name != UPLOAD_JOB or not job.args:
            continue
        ids.update(int(i) for i in job.args[0])
    return ids


def recover_stuck_uploads(settings: Settings, older_than: timedelta = timedelta(minutes=2)
                          ) -> list[int]:
    """Queue again every upload 'processing' that no run holds and no job will pick up:
    - claimed, but the claim's lease ran out (the run died or stalled): released and queued,
      unless a queued job already lists it;
    - never claimed, older than `older_than`, and in no queued or running job.
    Returns their ids. Raises redis errors when the queue is down (released claims are then
    queued by a later round: they are unclaimed and old by then)."""
    from scanner_app.platform.queues import UPLOADS_QUEUE, queue
    from scanner_app.uploads.service import JOB_TIMEOUT_SECONDS

    released = set(release_expired())
    cutoff = utcnow() - older_than
    unclaimed = set(db.session.scalars(
        select(Upload.id).where(Upload.status == "processing", Upload.claim_token.is_(None),
                                Upload.created_at < cutoff)))
    db.session.commit()
    if not released and not unclaimed:
        return []
    uploads_queue = queue(settings, UPLOADS_QUEUE)
    queued = _ids_in(uploads_queue.jobs)
    started = StartedJobRegistry(queue=uploads_queue).get_job_ids()
    running = _ids_in(Job.fetch_many(started, connection=uploads_queue.connection))
    # A released claim is the truth about its run: it stopped renewing, so a job still listed
    # as running no longer works on it (if it wakes up, it finds its claim gone and stops).
    orphans = sorted((released - queued) | (unclaimed - released - queued - running))
    if orphans:
        from scanner_app.uploads.job import process_uploads

        uploads_queue.enqueue(process_uploads, orphans, job_timeout=JOB_TIMEOUT_SECONDS,
                              description=f"Recover uploads {orphans[0]}..{orphans[-1]}")
        log.warning("Uploads %s were left processing without a live run; queued them again",
                    orphans)
    return orphans
