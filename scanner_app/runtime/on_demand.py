"""Parts of `scanner run` that start only when there is work for them: the processing worker
(reconstructions). Idle, it would hold 30 MB of a 512 MB Pi for nothing (issue 15); it is
forked when its queue has a job waiting, and leaves by itself (`scanner worker --max-idle`)
once no job came for IDLE_EXIT_SECONDS, so a burst of jobs is served by one process.

The supervisor asks Redis about once a second how many jobs wait (one LLEN). The client lives
for that one question and is closed before the supervisor goes on, so no connection is ever
open when it forks a part (zygote.py); its timeouts are short, as the supervisor's loop must
not stall on a Redis that is down (then nothing is started, and the next question comes a
second later).
"""

from __future__ import annotations

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from scanner_app.config import Settings

POLL_SECONDS = 1.0
REDIS_TIMEOUT_SECONDS = 0.5
# A worker started on demand waits this long for another job before it exits.
IDLE_EXIT_SECONDS = 10
# Set in the environment of `scanner run`'s parts when a worker starts on demand, so the
# station page says "starts when a model is queued" rather than "no processing worker"
# (station/health.py's PROCESSING_ON_DEMAND_ENV: not imported, this module loads early).
ON_DEMAND_ENV = "SCANNER_PROCESSING_ON_DEMAND"
# RQ's list of a queue's waiting jobs (rq.Queue.redis_queue_namespace_prefix + name).
QUEUE_KEY_PREFIX = "rq:queue:"


class QueueWatch:
    """Whether jobs wait on `queue`, asked at most every POLL_SECONDS."""

    def __init__(self, settings: Settings, queue: str, first_at: float = 0.0,
                 every: float = POLL_SECONDS) -> None:
        self.settings = settings
        self.key = QUEUE_KEY_PREFIX + queue
        self.every = every
        self.next_at = first_at

    def _client(self) -> Redis:
        options = {"socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
                   "socket_timeout": REDIS_TIMEOUT_SECONDS, "retry": Retry(NoBackoff(), 0)}
        if self.settings.redis_url:
            return Redis.from_url(self.settings.redis_url, **options)
        return Redis(unix_socket_path=str(self.settings.redis_socket), **options)

    def jobs_waiting(self, now: float) -> bool:
        """True when it is time to ask and at least one job waits; never raises."""
        if now < self.next_at:
            return False
        self.next_at = now + self.every
        client = self._client()
        try:
            return bool(client.llen(self.key))
        except (RedisError, OSError):
            return False  # Redis down or restarting: asked again in a second
        finally:
            client.close()
            client.connection_pool.disconnect()
