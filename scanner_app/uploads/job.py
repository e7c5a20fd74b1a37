"""The uploads job: process the files of one upload request (on the `uploads` queue, never the
hardware queue; it touches no hardware). Each file is processed on its own, so one that makes
processing crash is marked 'failed' (its file kept) and the others still get done."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from scanner_app.models.statuses import UploadStatus
from scanner_app.platform.log_context import log_ids
from scanner_app.platform.queues import UPLOAD_JOB, job_app_context, on_horse_killed

log = logging.getLogger("scanner.uploads")

# What a person reads on a failed upload. The exception itself (its text names files, paths
# and library internals) goes to the log, with its traceback, never into Upload.error.
FAILED_SENTENCE = ("Processing this file stopped with an error on the station. The file is kept "
                   "in the session folder; upload it again, and report it (the details are in "
                   "the station's log) if this keeps happening.")
TIMEOUT_SENTENCE = ("Processing took longer than the station allows and was stopped. The "
                    "file is kept in the session folder; send fewer or smaller files at once.")
KILLED_SENTENCE = ("The worker processing this upload stopped unexpectedly (for example, out "
                   "of memory). The file is kept in the session folder; try a smaller file.")


CRASH_KEY = "scanner:{}:uploads:starts:{}"  # station (data dir), upload id
MAX_STARTS = 2  # a file whose processing killed the process twice is failed, not retried


class CrashGuard:
    """For a worker that runs upload jobs in its own process (runtime/in_process.py): counts,
    in Redis, how often processing of each file started without ending. Its process dying
    (killed, out of memory) leaves the count up; the file is retried once, then failed with
    KILLED_SENTENCE, so one bad file cannot bring the worker down again and again."""

    def __init__(self, connection: Any, station: str):
        self.connection = connection
        self.station = station  # stations may share one Redis; upload ids repeat

    def _key(self, upload_id: int) -> str:
        return CRASH_KEY.format(self.station, upload_id)

    def start(self, upload_id: int) -> bool:
        """False when this file's processing already started MAX_STARTS times unfinished."""
        key = self._key(upload_id)
        try:
            pipe = self.connection.pipeline()
            pipe.incr(key)
            pipe.expire(key, 7 * 24 * 3600)
            starts = pipe.execute()[0]
        except Exception:  # noqa: BLE001 - no count without Redis: process it
            log.warning("Could not count the processing starts of upload %s", upload_id)
            return True
        return int(starts) <= MAX_STARTS

    def ended(self, upload_id: int) -> None:
        with contextlib.suppress(Exception):
            self.connection.delete(self._key(upload_id))


_crash_guard: CrashGuard | None = None


@contextlib.contextmanager
def use_crash_guard(connection: Any, data_dir: Any) -> Iterator[None]:
    """Count processing starts (CrashGuard) for the jobs run inside this block."""
    import hashlib

    global _crash_guard
    station = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
    previous, _crash_guard = _crash_guard, CrashGuard(connection, station)
    try:
        yield
    finally:
        _crash_guard = previous


def mark_failed(upload_ids: list[int], sentence: str, token: str | None = None,
                job_id: str | None = None) -> None:
    """Mark uploads still 'processing' as failed with `sentence` (their files are kept).

    With `token`: only the uploads that run holds. With `job_id` (the worker, when the process
    running an uploads job was killed: mark_failed(job.args[0], KILLED_SENTENCE,
    job_id=job.id) inside an app context): only the file that job had claimed (the one in
    flight); the files it never reached are queued again, not failed. Otherwise every one of
    them, except those a web request is processing itself right now."""
    from scanner_app.platform.extensions import db
    from scanner_app.uploads.recorder import finish

    never_reached: list[int] = []
    for upload_id in upload_ids:
        try:
            if token is None and job_id and not _claimed_by_job(upload_id, job_id):
                # The killed run claims file by file: it never started this one.
                db.session.rollback()
                never_reached.append(upload_id)
                continue
            if token is None and _held_by_another_run(upload_id, job_id):
                db.session.rollback()
                continue
            finish(upload_id, UploadStatus.FAILED, sentence, token)
        except Exception:  # noqa: BLE001 - e.g. the database itself is down
            db.session.rollback()
            log.exception("Could not mark upload %s as failed", upload_id)
    if never_reached:
        _retry(never_reached)


def _claimed_by_job(upload_id: int, job_id: str) -> bool:
    from sqlalchemy import select

    from scanner_app.models import Upload
    from scanner_app.platform.extensions import db
    from scanner_app.uploads.claims import job_token_prefix

    token = db.session.scalar(select(Upload.claim_token).where(Upload.id == upload_id))
    return bool(token and token.startswith(job_token_prefix(job_id)))


def _retry(upload_ids: list[int]) -> None:
    """Queue again the uploads a killed run never reached (when the queue answers; if not,
    the worker's recovery round queues them later: they are unclaimed)."""
    from scanner_app.config import current_settings
    from scanner_app.platform.extensions import db
    from scanner_app.uploads.recovery import recover_stuck_uploads

    try:
        recover_stuck_uploads(current_settings(), retry=upload_ids)
    except Exception:  # noqa: BLE001 - recovery takes them later
        db.session.rollback()
        log.exception("Could not queue uploads %s again; recovery will", upload_ids)


def _held_by_another_run(upload_id: int, job_id: str | None) -> bool:
    from scanner_app.uploads.claims import REQUEST_PREFIX, job_token_prefix, live_holder

    holder = live_holder(upload_id)
    if holder is None:
        return False
    if job_id:
        return not holder.startswith(job_token_prefix(job_id))
    return holder.startswith(REQUEST_PREFIX)


def _claim_token() -> str:
    """This run's token: names the RQ job when there is one."""
    from rq import get_current_job

    from scanner_app.uploads.claims import new_token

    job = get_current_job()
    return new_token(job.id if job is not None else None)


def process_uploads(upload_ids: list[int]) -> dict[str, int]:
    """RQ entry point (also called in the web request when the queue is down). Claims each
    upload as it gets to it: those another run holds, or that are finished, are skipped.
    Returns how many uploads ended done / failed / skipped."""
    from rq.timeouts import JobTimeoutException

    from scanner_app.config import current_settings
    from scanner_app.platform.extensions import db
    from scanner_app.sessions import record as session_records
    from scanner_app.uploads.claims import Claim
    from scanner_app.uploads.processing import process_upload
    from scanner_app.uploads.service import forget_upload_objects

    # Plain strings as keys: the summary is the job's result, kept (pickled) by RQ.
    summary = {UploadStatus.DONE.value: 0, UploadStatus.FAILED.value: 0, "skipped": 0}
    # session.json once per run, not per file: its counters change with every file.
    with job_app_context(), session_records.batched():
        settings = current_settings()
        claim = Claim(_claim_token(), set())  # file by file (Claim.acquire in process_upload)
        for position, upload_id in enumerate(upload_ids):
            # On every line about this file, and on none after it: in a web request (the
            # queue down) a bound id would otherwise stay on the thread's later lines.
            with log_ids(upload=upload_id):
                guard = _crash_guard
                if guard is not None and not guard.start(upload_id):
                    # Claimed first: a file another live run holds is left to that run.
                    failed = claim.acquire(upload_id)
                    if failed:
                        log.error("Processing upload %s stopped the worker's process %d "
                                  "times; marked failed", upload_id, MAX_STARTS)
                        mark_failed([upload_id], KILLED_SENTENCE, claim.token)
                    guard.ended(upload_id)
                    summary[UploadStatus.FAILED.value if failed else "skipped"] += 1
                    continue
                try:
                    summary[process_upload(upload_id, settings, claim)] += 1
                except JobTimeoutException:
                    db.session.rollback()
                    mark_failed(upload_ids[position:], TIMEOUT_SENTENCE, claim.token)
                    raise  # RQ ends the job; the files stay where they are
                except Exception:  # noqa: BLE001 - one bad file must not stop the rest
                    log.exception("Processing upload %s failed", upload_id)
                    db.session.rollback()
                    mark_failed([upload_id], FAILED_SENTENCE, claim.token)
                    summary[UploadStatus.FAILED] += 1
                finally:
                    forget_upload_objects()  # nothing is kept between uploads
                    if guard is not None:
                        guard.ended(upload_id)
    if summary["skipped"]:
        log.info("Uploads: %d skipped (finished, gone, or processed by another run)",
                 summary["skipped"])
    return summary


@on_horse_killed(UPLOAD_JOB)
def uploads_horse_killed(job: Any, how: str) -> None:
    """The worker's clean-up when this job's process was killed: the file it was working on
    is marked failed (kept); the files it never reached are queued again (mark_failed)."""
    if job.args:
        mark_failed(list(job.args[0]), KILLED_SENTENCE, job_id=job.id)
