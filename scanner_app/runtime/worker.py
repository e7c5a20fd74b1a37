"""The station's RQ worker: RQ's forking Worker, plus what scans need.

- Every job runs in the work-horse inside a fresh app context, after the horse has dropped
  the database connections it inherited from the worker (sharing a connection across fork()
  corrupts it, PostgreSQL's in particular).
- Recovery: stale scans are reconciled and uploads left 'processing' without a job are queued
  again, at startup and every MAINTENANCE_SECONDS while idle; a scan whose work-horse dies is
  marked interrupted at once, and the uploads of a killed uploads job are marked failed
  (their files kept).
- A warm shutdown (SIGTERM/SIGINT, e.g. Ctrl-C of `scanner run`) asks a running scan to
  stop before its next frame, as `interrupted`, instead of waiting for the whole scan. The
  request is written to a flag file first (<data dir>/worker-stop/<worker name>), which the
  scan checks between frames, and then sent to the work-horse as SIGTERM: a signal alone is
  lost when it comes before the work-horse exists or before it has installed its handler.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
from collections.abc import Sequence
from pathlib import Path

from flask import Flask
from redis import Redis
from rq import Worker
from rq.job import Job
from rq.queue import Queue
from sqlalchemy.exc import SQLAlchemyError

from scanner_app.platform.extensions import db
from scanner_app.platform.queues import SCAN_JOB, UPLOAD_JOB
from scanner_app.scans import job as scan_job  # loaded before any fork: the horse sets up at once

log = logging.getLogger("scanner.worker")

WORKER_TTL_SECONDS = 35  # also bounds how long the idle worker blocks on Redis
MAINTENANCE_SECONDS = 15


def _recover_uploads(app: Flask) -> None:
    from scanner_app.uploads.recovery import recover_stuck_uploads

    with app.app_context():
        try:
            recover_stuck_uploads(app.config["SCANNER_SETTINGS"])
        except Exception:  # noqa: BLE001 - the next round tries again
            db.session.rollback()
            log.exception("Re-queueing uploads left without a job failed")


def stop_flag_path(data_dir: Path, worker_name: str) -> Path:
    """Where the worker named `worker_name` records a warm shutdown for its work-horse."""
    return Path(data_dir) / "worker-stop" / re.sub(r"[^A-Za-z0-9._-]", "_", worker_name)


def _reconcile(app: Flask) -> list[int]:
    from scanner_app.scans.recovery import reconcile_stale_scans

    with app.app_context():  # its own session, closed again before any fork
        return reconcile_stale_scans()


class StationWorker(Worker):
    def __init__(self, *args, app: Flask, **kwargs):
        self.app = app
        kwargs.setdefault("worker_ttl", WORKER_TTL_SECONDS)
        kwargs.setdefault("maintenance_interval", MAINTENANCE_SECONDS)
        super().__init__(*args, **kwargs)
        self.stop_flag = stop_flag_path(app.config["SCANNER_SETTINGS"].data_dir, self.name)
        self.clear_stop_flag()  # one left by an earlier worker of the same name

    def clear_stop_flag(self) -> None:
        with contextlib.suppress(OSError):
            self.stop_flag.unlink(missing_ok=True)

    def fork_work_horse(self, job: Job, queue: Queue):
        # Close the worker's idle connections first, so the horse inherits none: a SQLite
        # connection must never be carried across fork(), not even to be closed.
        with self.app.app_context():
            for engine in db.engines.values():
                engine.dispose()
        super().fork_work_horse(job, queue)

    # --- in the work-horse (after fork) ------------------------------------------------
    def main_work_horse(self, job: Job, queue: Queue):
        self.setup_work_horse_signals()  # as early as possible (RQ sets them again: harmless)
        with self.app.app_context():
            for engine in db.engines.values():
                engine.dispose(close=False)  # the parent keeps using its connections
        self.app.app_context().push()  # never popped: main_work_horse ends in os._exit
        super().main_work_horse(job, queue)

    def setup_work_horse_signals(self):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # SIGTERM from the worker's warm shutdown: a scan stops between frames. The flag
        # file catches what a signal sent before this line would have missed.
        signal.signal(signal.SIGTERM, lambda *_: scan_job.STOP_REQUESTED.set())
        scan_job.stop_flag = self.stop_flag

    # --- in the worker -----------------------------------------------------------------
    def handle_warm_shutdown_request(self):
        super().handle_warm_shutdown_request()
        try:
            # Only os calls here: this runs in a signal handler.
            self.stop_flag.parent.mkdir(parents=True, exist_ok=True)
            self.stop_flag.touch()
        except OSError as exc:
            log.warning("Could not record the stop request in %s: %s", self.stop_flag, exc)
        if self.horse_pid:
            try:
                os.kill(self.horse_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def handle_work_horse_killed(self, job, retpid, ret_val, rusage):
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        if job.func_name == UPLOAD_JOB and job.args:
            from scanner_app.uploads.job import KILLED_SENTENCE, mark_failed

            with self.app.app_context():
                mark_failed(list(job.args[0]), KILLED_SENTENCE, job_id=job.id)
            return
        if job.func_name != SCAN_JOB or not job.args:
            return
        how = (f"was killed by signal {os.WTERMSIG(ret_val)}" if ret_val and
               os.WIFSIGNALED(ret_val) else "ended unexpectedly")
        try:
            from scanner_app.scans.recovery import mark_interrupted

            with self.app.app_context():
                mark_interrupted(int(job.args[0]), job.id,
                                 f"The worker process running the scan {how}.")
        except Exception:  # noqa: BLE001 - reconcile catches it later
            log.exception("Could not mark scan %s interrupted", job.args[0])

    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        try:
            _reconcile(self.app)
        except Exception:  # noqa: BLE001 - the next round tries again
            log.exception("Reconciling stale scans failed")
        _recover_uploads(self.app)


class WorkerCannotStart(Exception):
    """The worker cannot run; the message says why and what to do."""


class QueueUnreachable(WorkerCannotStart):
    """Redis does not answer; the message says where it was looked for and what to do."""


def describe_redis(connection: Redis) -> str:
    """Where the worker looks for Redis, without any password."""
    kwargs = connection.connection_pool.connection_kwargs
    if kwargs.get("path"):
        return f"unix socket {kwargs['path']}"
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')} (db {kwargs.get('db', 0)})"


def run_worker(
    app: Flask,
    queues: Sequence[str],
    *,
    burst: bool = False,
    name: str | None = None,
    connection: Redis | None = None,
) -> None:
    """Run until stopped (or, with burst, until the queues are empty).
    Raises WorkerCannotStart (QueueUnreachable when Redis does not answer)."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from scanner_app.platform.queues import redis_connection

    # Scan progress, failures and recoveries belong in the worker's log (RQ only sets up
    # its own loggers).
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    settings = app.config["SCANNER_SETTINGS"]
    connection = connection or redis_connection(settings)
    try:
        connection.ping()
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise QueueUnreachable(
            f"The job queue (Redis) at {describe_redis(connection)} is not reachable ({exc}). "
            "Start the whole station with 'scanner run', or start Redis and check "
            "SCANNER_REDIS_URL."
        ) from None
    try:
        recovered = _reconcile(app)
    except SQLAlchemyError as exc:
        raise WorkerCannotStart(
            f"The worker cannot use the database ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0]}). Run 'scanner db upgrade' and check "
            "SCANNER_DATABASE_URL."
        ) from None
    _recover_uploads(app)
    if recovered:
        log.warning("Scans %s were left running by a stopped worker and are now interrupted; "
                    "resume them to continue.", recovered)
    worker = StationWorker(
        list(queues), connection=connection, app=app,
        name=name or f"scanner-{socket.gethostname()}-{os.getpid()}",
    )
    try:
        worker.work(burst=burst, logging_level="INFO")
    finally:
        worker.clear_stop_flag()
