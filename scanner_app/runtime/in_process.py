"""Upload jobs run inside the uploads worker's own process (no work-horse per job), in runs.

A worker that listens only on the uploads queue does not fork a work-horse for each job: a
fork, a fresh import of the image stack and new database connections cost far more than
processing one small photo (issue 15: 200 photos sent one per request were 5x slower than the
same sent at once). Scans, calibrations and reconstructions still fork (a worker with the
hardware or processing queue never runs jobs in its own process), so uploads and scans never
share a process.

Consecutive jobs make one *run*: one app context, and session.json written once per session
when the run ends (the queue is empty, RUN_SECONDS or RUN_JOBS were reached, or the worker
stops), not once per job. The database is written per file as before, so nothing about crash
safety changes: if the worker dies mid-run, its claims name a job whose worker is gone, and
the next worker's start (or its maintenance round) queues every unfinished upload again
(uploads.recovery). A file that kills the worker's process itself (e.g. out of memory) is
retried once and then marked failed (uploads.job.CrashGuard), so it cannot stop the station.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from flask import Flask

from scanner_app.config import settings_of
from scanner_app.platform.extensions import db
from scanner_app.platform.log_context import log_ids
from scanner_app.platform.queues import UPLOADS_QUEUE

log = logging.getLogger("scanner.worker")

RUN_SECONDS = 5.0  # session.json lags the database by at most about this long
RUN_JOBS = 500


def runs_in_process(queue_names: list[str]) -> bool:
    """Only a worker on the uploads queue alone runs its jobs in its own process."""
    return list(queue_names) == [UPLOADS_QUEUE]


class InProcessRuns:
    """The open run of a worker that executes jobs in its own process."""

    def __init__(self, app: Flask):
        self.app = app
        self._stack: contextlib.ExitStack | None = None
        self._started = 0.0
        self._jobs = 0

    @property
    def open(self) -> bool:
        return self._stack is not None

    def execute(self, worker: Any, job: Any, queue: Any) -> None:
        """Run `job` as RQ's SimpleWorker does, inside the open run (opening one first)."""
        from scanner_app.uploads.job import use_crash_guard

        if self._stack is None:
            self._open(worker.connection, use_crash_guard)
        self._jobs += 1
        execution = worker.prepare_execution(job)
        try:
            with log_ids(job=job.id):
                worker.perform_job(job, queue, execution)
        finally:
            db.session.rollback()  # whatever a failed job left open; its commits stay
        if self._due(worker):
            self.close()

    def _open(self, connection: Any, use_crash_guard: Any) -> None:
        from scanner_app.sessions import record as session_records

        stack = contextlib.ExitStack()
        stack.enter_context(self.app.app_context())
        stack.enter_context(session_records.batched())
        stack.enter_context(use_crash_guard(connection, settings_of(self.app).data_dir))
        self._stack, self._started, self._jobs = stack, time.monotonic(), 0

    def _due(self, worker: Any) -> bool:
        if getattr(worker, "_stop_requested", False):
            return True
        if self._jobs >= RUN_JOBS or time.monotonic() - self._started >= RUN_SECONDS:
            return True
        try:
            return all(queue.count == 0 for queue in worker.queues)
        except Exception:  # noqa: BLE001 - Redis trouble: end the run, the worker copes
            return True

    def close(self) -> None:
        """End the run: write the session records it held; pop its app context."""
        stack, self._stack = self._stack, None
        if stack is not None:
            try:
                stack.close()
            except Exception:  # noqa: BLE001 - records are written again by the next change
                log.exception("Ending a run of upload jobs failed")
            log.info("Ran %d upload job(s) in the worker's own process, session records "
                     "written once", self._jobs)
