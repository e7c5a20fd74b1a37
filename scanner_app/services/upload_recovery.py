"""Uploads stuck in 'processing' with no job to finish them: the web process stopped between
committing the rows and queueing the job, Redis lost its data, or a job was removed by hand.
Their files are safe in the session; this queues them again. Processing is safe to repeat
(an upload already done is skipped, a half-done one is reset first).

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
from scanner_app.extensions import db
from scanner_app.models import Upload
from scanner_app.models._time import utcnow

log = logging.getLogger("scanner.uploads")

JOB_FUNC = "scanner_app.jobs.upload_job.process_uploads"


def _ids_in(jobs: list[Job | None]) -> set[int]:
    ids: set[int] = set()
    for job in jobs:
        if job is None or job.func_name != JOB_FUNC or not job.args:
            continue
        ids.update(int(i) for i in job.args[0])
    return ids


def recover_stuck_uploads(settings: Settings, older_than: timedelta = timedelta(minutes=2)
                          ) -> list[int]:
    """Queue again every upload 'processing' for longer than `older_than` that no queued or
    running job holds. Returns their ids. Raises redis errors when the queue is down."""
    from scanner_app.jobs.queues import UPLOADS_QUEUE, queue
    from scanner_app.services.uploads import JOB_TIMEOUT_SECONDS

    cutoff = utcnow() - older_than
    stuck = list(db.session.scalars(
        select(Upload.id).where(Upload.status == "processing", Upload.created_at < cutoff)
        .order_by(Upload.id)))
    if not stuck:
        return []
    uploads_queue = queue(settings, UPLOADS_QUEUE)
    started = StartedJobRegistry(queue=uploads_queue).get_job_ids()
    held = _ids_in(uploads_queue.jobs) | _ids_in(
        Job.fetch_many(started, connection=uploads_queue.connection))
    orphans = [upload_id for upload_id in stuck if upload_id not in held]
    if orphans:
        from scanner_app.jobs.upload_job import process_uploads

        uploads_queue.enqueue(process_uploads, orphans, job_timeout=JOB_TIMEOUT_SECONDS,
                              description=f"Recover uploads {orphans[0]}..{orphans[-1]}")
        log.warning("Uploads %s were left processing without a job; queued them again",
                    orphans)
    return orphans
