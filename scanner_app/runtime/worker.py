"""The station's RQ worker: RQ's forking Worker, plus what scans need.

- A worker on the uploads queue alone forks no work-horse: it runs upload jobs in its own
  process, several in one run with session.json written once (runtime/in_process.py).

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
- The work-horse dies with the worker (PR_SET_PDEATHSIG, runtime/parent_death.py): a scan's
  horse gets SIGTERM and stops before its next frame as `interrupted`; any other job's horse
  is killed outright. Nothing drives the rig once the worker that supervises it is gone.
- A killed work-horse: the worker calls what the job's kind registered with
  `platform.queues.on_horse_killed`, and, on the hardware queue, switches the motor driver
  and the light off (hal.safe_off): a killed process leaves GPIO lines at their last level.
- At start, a scan worker switches the rig off (its predecessor may have been killed).
- Idle: after SCANNER_IDLE_OFF_SECONDS (default 600; 0 turns it off) without a job, the
  worker switches the rig off the same way, once, between jobs.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from flask import Flask
from redis import Redis
from rq import SimpleWorker, Worker
from rq.job import Job
from rq.queue import Queue
from rq.worker import WorkerStatus
from sqlalchemy.exc import SQLAlchemyError

from scanner_app.config import settings_of
from scanner_app.platform.extensions import db
from scanner_app.platform.log_context import LOG_FORMAT, bind_log_ids, install_log_context
from scanner_app.platform.queues import HARDWARE_QUEUE, SCAN_JOB, horse_killed_handlers
from scanner_app.runtime.in_process import InProcessRuns, runs_in_process
from scanner_app.runtime.parent_death import die_with_parent
from scanner_app.uploads import job as _upload_job  # noqa: F401 - registers its killed handler

log = logging.getLogger("scanner.worker")

# The scan job: imported before any fork by a worker on the hardware queue only. It is light:
# numpy and OpenCV load inside run_scan, in the work-horse that scans (issue 15).
SCAN_JOB_MODULE = "scanner_app.scans.job"

WORKER_TTL_SECONDS = 35  # also bounds how long the idle worker blocks on Redis
MAINTENANCE_SECONDS = 15
DEFAULT_IDLE_OFF_SECONDS = 600.0


def idle_off_seconds(environ: dict[str, str] | None = None) -> float:
    """SCANNER_IDLE_OFF_SECONDS: idle time before the rig is switched off (0 = never)."""
    raw = (environ if environ is not None else os.environ).get("SCANNER_IDLE_OFF_SECONDS", "")
    try:
        return max(0.0, float(raw)) if raw.strip() else DEFAULT_IDLE_OFF_SECONDS
    except ValueError:
        log.warning("SCANNER_IDLE_OFF_SECONDS=%r is not a number; using %.0f s", raw,
                    DEFAULT_IDLE_OFF_SECONDS)
        return DEFAULT_IDLE_OFF_SECONDS


def switch_rig_off(app: Flask, why: str) -> list[str]:
    """hal.safe_off under the hardware lock (a scan or `scanner hal check` that holds the rig
    is left alone). Returns what was done, one sentence each; never raises."""
    from hal import safe_off
    from scanner_app.platform.hardware_lock import HardwareBusy, hardware_lock

    settings = settings_of(app)
    try:
        with hardware_lock(settings.data_dir, wait_seconds=2.0):
            done = safe_off(settings.hal)
    except HardwareBusy:
        log.info("Rig not switched off (%s): another process is using it", why)
        return []
    except Exception:  # noqa: BLE001 - this runs when something already went wrong
        log.exception("Switching the rig off (%s) failed", why)
        return []
    for sentence in done:
        log.warning("Rig switched off (%s): %s", why, sentence)
    return done


def _recover_uploads(app: Flask) -> None:
    from scanner_app.uploads.recovery import recover_stuck_uploads

    with app.app_context():
        try:
            recover_stuck_uploads(settings_of(app))
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
        self.stop_flag = stop_flag_path(settings_of(app).data_dir, self.name)
        self.clear_stop_flag()  # one left by an earlier worker of the same name
        self.worker_pid = os.getpid()
        self.idle_off_seconds = idle_off_seconds()
        self.last_job_ended = time.monotonic()
        # Only a worker on the hardware queue ever drives (or switches off) the rig.
        self.drives_rig = HARDWARE_QUEUE in self.queue_names()
        if self.drives_rig:
            # Loaded before any fork, so each work-horse has the job's stop flag and signal
            # set-up at once; the image libraries it needs load in the horse (run_scan).
            importlib.import_module(SCAN_JOB_MODULE)
        self.rig_off = not self.drives_rig
        # The uploads worker runs its jobs itself, in runs (runtime/in_process.py).
        self.runs = InProcessRuns(app) if runs_in_process(self.queue_names()) else None

    def clear_stop_flag(self) -> None:
        with contextlib.suppress(OSError):
            self.stop_flag.unlink(missing_ok=True)

    def fork_work_horse(self, job: Job, queue: Queue):
        # Close the worker's idle connections first, so the horse inherits none: a SQLite
        # connection must never be carried across fork(), not even to be closed.
        with self.app.app_context():
            for engine in db.engines.values():
                engine.dispose()
        self.worker_pid = os.getpid()
        super().fork_work_horse(job, queue)

    def execute_job(self, job: Job, queue: Queue):
        self.rig_off = not self.drives_rig
        try:
            if self.runs is not None:
                self.runs.execute(self, job, queue)
                return self.set_state(WorkerStatus.IDLE)
            return super().execute_job(job, queue)
        finally:
            self.last_job_ended = time.monotonic()

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        if self.runs is not None:  # no heartbeat while a job runs here: as SimpleWorker
            return SimpleWorker.get_heartbeat_ttl(self, job, working_time)
        return super().get_heartbeat_ttl(job, working_time)

    # --- in the work-horse (after fork) ------------------------------------------------
    def main_work_horse(self, job: Job, queue: Queue):
        self.setup_work_horse_signals()  # as early as possible (RQ sets them again: harmless)
        # Die with the worker. A scan gets SIGTERM: it stops before its next frame and
        # reads `interrupted`, its rig closed (motor and light off). Other jobs touch no
        # hardware and are simply killed; their recovery requeues or fails them.
        if not die_with_parent(self.worker_pid, signal.SIGTERM if job.func_name == SCAN_JOB
                               else signal.SIGKILL):
            os._exit(1)  # the worker died before this line: run nothing unsupervised
        bind_log_ids(job=job.id)  # the job binds its session, scan or upload ids itself
        with self.app.app_context():
            for engine in db.engines.values():
                engine.dispose(close=False)  # the parent keeps using its connections
        self.app.app_context().push()  # never popped: main_work_horse ends in os._exit
        super().main_work_horse(job, queue)

    def setup_work_horse_signals(self):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        scan_job = sys.modules.get(SCAN_JOB_MODULE)  # loaded before the fork (__init__)
        if scan_job is None:
            # Not a scan worker (no hardware queue): noting SIGTERM for between frames, which
            # is all a scan would do with it, changes nothing for other jobs either.
            signal.signal(signal.SIGTERM, lambda *_: None)
            return
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
        how = (f"was killed by signal {os.WTERMSIG(ret_val)}" if ret_val and
               os.WIFSIGNALED(ret_val) else "ended unexpectedly")
        if job.origin == HARDWARE_QUEUE:
            # First the hardware: the horse may have died with the motor enabled.
            switch_rig_off(self.app, f"the work-horse of job {job.id} {how}")
            self.rig_off = True
        for handler in horse_killed_handlers(job.func_name):
            try:
                with self.app.app_context():
                    handler(job, how)
            except Exception:  # noqa: BLE001 - recovery at the next start catches it later
                log.exception("The clean-up of killed job %s (%s) failed", job.id,
                              job.func_name)

    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        self.switch_off_when_idle()
        try:
            _reconcile(self.app)
        except Exception:  # noqa: BLE001 - the next round tries again
            log.exception("Reconciling stale scans failed")
        _recover_uploads(self.app)


    def switch_off_when_idle(self, now: float | None = None) -> bool:
        """Between jobs (maintenance runs only then): switch the rig off once it has been idle
        for idle_off_seconds. Returns whether it did so now."""
        idle = (now if now is not None else time.monotonic()) - self.last_job_ended
        if self.rig_off or not self.idle_off_seconds or idle < self.idle_off_seconds:
            return False
        switch_rig_off(self.app, f"idle for {idle:.0f} s")
        self.rig_off = True  # once per idle period: the next job arms it again
        return True


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
    wait_for_redis: float = 0.0,
    max_idle: int | None = None,
) -> None:
    """Run until stopped (or, with burst, until the queues are empty; with `max_idle`, until
    no job came for that many seconds: RQ's own idle exit, a blocking wait with a deadline).
    Redis may take up to `wait_for_redis` seconds to answer at start (`scanner run`
    restarting it).
    Raises WorkerCannotStart (QueueUnreachable when Redis does not answer)."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from scanner_app.platform.queues import redis_connection

    # Scan progress, failures and recoveries belong in the worker's log (RQ only sets up
    # its own loggers).
    # force: the app factory may have set up the root logger already, without the ids.
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, force=True)
    install_log_context()  # every line says which session and scan (or upload) it is about
    settings = settings_of(app)
    connection = connection or redis_connection(settings)
    deadline, told = time.monotonic() + wait_for_redis, False
    while True:
        try:
            connection.ping()
            break
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            if time.monotonic() >= deadline:
                raise QueueUnreachable(
                    f"The job queue (Redis) at {describe_redis(connection)} is not reachable "
                    f"({exc}). Start the whole station with 'scanner run', or start Redis and "
                    "check SCANNER_REDIS_URL."
                ) from None
            if not told:  # one line, not one per try
                log.warning("Waiting up to %.0f s for the job queue (Redis) at %s",
                            wait_for_redis, describe_redis(connection))
                told = True
            time.sleep(0.5)
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
    if HARDWARE_QUEUE in queues:
        # Whatever drove the rig before us may have died with the motor enabled or the light
        # on (a killed worker cannot switch anything off): start from a safe rig.
        switch_rig_off(app, "the scan worker is starting")
    worker = StationWorker(
        list(queues), connection=connection, app=app,
        name=name or f"scanner-{socket.gethostname()}-{os.getpid()}",
    )
    try:
        worker.work(burst=burst, logging_level="INFO", max_idle_time=max_idle)
    finally:
        if worker.runs is not None:
            worker.runs.close()
        worker.clear_stop_flag()
