"""Redis connection and the station's queues.

`hardware`: scans, which drive the rig (one at a time; the worker owns the rig).
`uploads`: processing of received files, which never touches hardware.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import Queue

from scanner_app.config import Settings

HARDWARE_QUEUE = "hardware"
UPLOADS_QUEUE = "uploads"
ALL_QUEUES = (HARDWARE_QUEUE, UPLOADS_QUEUE)

# The job functions, by the dotted path RQ stores as a job's func_name (enqueue by path, so
# the web process never imports the hardware side).
SCAN_JOB = "scanner_app.scans.job.run_scan"
UPLOAD_JOB = "scanner_app.uploads.job.process_uploads"


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
    """The handlers registered for `func_name`, in registration order."""
    return list(_horse_killed_handlers.get(func_name, ()))
