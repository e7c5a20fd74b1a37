"""The one queue module: Redis connection, the station's queues and job kinds, how jobs are
enqueued (timeouts, TTLs, the 503 when Redis cannot be reached), the app context a job runs in,
and what happens when a job's work-horse is killed.

`hardware`: scans, which drive the rig (one at a time; the worker owns the rig).
`uploads`: processing of received files, which never touches hardware.
`processing`: reconstructions (long CPU work), served by a worker of its own at low CPU
priority (`scanner worker --queues processing`), never by the worker that drives the rig.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, has_app_context
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from rq import Queue
from rq.job import Job

from scanner_app.config import Settings
from scanner_app.platform.errors import ServiceUnavailable

log = logging.getLogger("scanner.queues")

HARDWARE_QUEUE = "hardware"
UPLOADS_QUEUE = "uploads"
PROCESSING_QUEUE = "processing"
# What a plain `scanner worker` listens on; the processing queue has its own worker.
ALL_QUEUES = (HARDWARE_QUEUE, UPLOADS_QUEUE)
KNOWN_QUEUES = (*ALL_QUEUES, PROCESSING_QUEUE)

# The job functions, by the dotted path RQ stores as a job's func_name (enqueue by path, so
# the web process never imports the hardware side).
SCAN_JOB = "scanner_app.scans.job.run_scan"
UPLOAD_JOB = "scanner_app.uploads.job.process_uploads"
RECONSTRUCTION_JOB = "scanner_app.reconstruction.job.run_reconstruction"
CALIBRATION_JOB = "scanner_app.scans.calibration_job.run_rig_calibration"
PREVIEW_JOB = "scanner_app.rig.preview_job.run_preview"
RIG_CONTROL_JOB = "scanner_app.rig.job.run_control"
# Jobs run in an app built by this factory when no app context was pushed for them (a bare
# `rq worker`); by path, because the factory sits above every slice.
APP_FACTORY = "scanner_app:create_app"

WEEK = 7 * 24 * 3600
# What redis-py raises when the server is down or too slow to answer.
QUEUE_ERRORS: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError,
                                                 OSError)


@dataclass(frozen=True)
class JobKind:
    """A kind of job: its function, its queue and how long RQ keeps it."""

    func: str
    queue: str
    timeout: int
    result_ttl: int = 500
    failure_ttl: int = WEEK


# Pauses count towards RQ's job timeout, so it is long; a scan job that reaches it ends as
# `interrupted` and can be resumed.
SCAN_JOBS = JobKind(SCAN_JOB, HARDWARE_QUEUE, timeout=24 * 3600, result_ttl=WEEK)
# A request of 500 large photos on a Pi takes a while.
UPLOAD_JOBS = JobKind(UPLOAD_JOB, UPLOADS_QUEUE, timeout=6 * 3600)
# A reconstruction of a few hundred frames on a Pi's cores: hours at worst.
RECONSTRUCTION_JOBS = JobKind(RECONSTRUCTION_JOB, PROCESSING_QUEUE, timeout=6 * 3600,
                              result_ttl=WEEK)
# A rig calibration drives the rig (hardware queue): a few dozen photos at most.
CALIBRATION_JOBS = JobKind(CALIBRATION_JOB, HARDWARE_QUEUE, timeout=1800)
# The live preview holds the rig only while someone watches, at most a few minutes a job (the
# page queues the next one); it yields at once to any other hardware job.
PREVIEW_JOBS = JobKind(PREVIEW_JOB, HARDWARE_QUEUE, timeout=600, result_ttl=60,
                       failure_ttl=3600)
# A manual control (turn, tilt, home): seconds; the page waits for its answer.
RIG_CONTROL_JOBS = JobKind(RIG_CONTROL_JOB, HARDWARE_QUEUE, timeout=300, result_ttl=300,
                           failure_ttl=3600)


def redis_connection(settings: Settings) -> Redis:
    """SCANNER_REDIS_URL when set, else the private redis-server's socket in the data dir.
    Short timeouts and one immediate retry: a request must answer 503 quickly when Redis is
    down, not sit through redis-py's default back-off (about 5 s)."""
    options = {
        "socket_connect_timeout": 2,
        "socket_timeout": 10,
        "health_check_interval": 30,
        "retry": Retry(NoBackoff(), 1),
    }
    if settings.redis_url:
        return Redis.from_url(settings.redis_url, **options)
    return Redis(unix_socket_path=str(settings.redis_socket), **options)


def queue(settings: Settings, name: str, connection: Redis | None = None) -> Queue:
    return Queue(name, connection=connection or redis_connection(settings))


def require_queue(connection: Redis, message: str) -> None:
    """Raise ServiceUnavailable (503) with `message` when Redis does not answer."""
    try:
        connection.ping()
    except QUEUE_ERRORS as exc:
        log.warning("Redis is not reachable: %s", exc)
        raise ServiceUnavailable(message, code="queue_unavailable") from None


def enqueue(settings: Settings, kind: JobKind, *args: Any, connection: Redis | None = None,
            job_id: str | None = None, description: str | None = None) -> Job:
    """Put a job of `kind` on its queue. Raises one of QUEUE_ERRORS when Redis is down: the
    caller decides what that means (undo and 503, or do the work in the request)."""
    return queue(settings, kind.queue, connection).enqueue(
        kind.func, *args, job_id=job_id, description=description, job_timeout=kind.timeout,
        result_ttl=kind.result_ttl, failure_ttl=kind.failure_ttl,
    )


_job_app: Flask | None = None


@contextlib.contextmanager
def job_app_context() -> Iterator[Flask]:
    """The app a job runs in: the current one when a request or the station's worker pushed
    it; otherwise one app per process, built once from the environment, in a fresh context."""
    global _job_app
    if has_app_context():
        yield current_app._get_current_object()
        return
    if _job_app is None:
        module, name = APP_FACTORY.split(":")
        _job_app = getattr(importlib.import_module(module), name)()
    with _job_app.app_context():
        yield _job_app


# --- what to do when a job's work-horse is killed ------------------------------------------
# A killed work-horse cannot clean up after itself (SIGKILL, out of memory): the worker that
# forked it calls the handlers its job kind registered, inside an app context, with the RQ
# job and a sentence saying how the horse ended. Each job kind owns its own clean-up, so the
# worker never branches on function names.
HorseKilledHandler = Callable[[Any, str], None]
_horse_killed_handlers: dict[str, list[HorseKilledHandler]] = {}


def on_horse_killed(func_name: str) -> Callable[[HorseKilledHandler], HorseKilledHandler]:
    """Register the decorated `handler(job, how)` for jobs whose func_name is `func_name`."""

    def register(handler: HorseKilledHandler) -> HorseKilledHandler:
        handlers = _horse_killed_handlers.setdefault(func_name, [])
        if handler not in handlers:  # a module imported twice registers once
            handlers.append(handler)
        return handler

    return register


def horse_killed_handlers(func_name: str) -> list[HorseKilledHandler]:
    """The handlers registered for `func_name`, in registration order. The job's module is
    imported first: the worker only forks work-horses, so a job kind whose module the worker
    never imported itself still gets its handlers called."""
    module = func_name.rpartition(".")[0]
    if module and func_name not in _horse_killed_handlers:
        try:
            importlib.import_module(module)
        except ImportError as exc:  # a job of a kind this version does not know
            log.warning("No clean-up for killed job %s: %s", func_name, exc)
    return list(_horse_killed_handlers.get(func_name, ()))
