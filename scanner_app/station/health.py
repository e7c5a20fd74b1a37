"""What the station knows about its own health: /healthz (every check, for monitors and systemd)
and the banner every page polls (is the worker or Redis down?).

Each check answers {"status": "ok" | "fail", ...facts, "message"?: a sentence saying what to
do}. They are cheap and bounded: Redis is asked with a half-second timeout, so a dead Redis
cannot make the health check itself hang.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import text

from scanner_app.config import Settings
from scanner_app.platform.disk import free_bytes
from scanner_app.platform.extensions import db
from scanner_app.platform.hardware_lock import lock_path
from scanner_app.platform.queues import HARDWARE_QUEUE, PROCESSING_QUEUE, UPLOADS_QUEUE

MB = 1024 * 1024
REDIS_TIMEOUT_SECONDS = 0.5
# A worker whose heartbeat is older than this is taken for dead (RQ beats at least every
# worker_ttl = 35 s while idle, more often while working).
WORKER_HEARTBEAT_SECONDS = 60
BANNER_CACHE_SECONDS = 3.0
# Set by `scanner run` (runtime/on_demand.py): its processing worker starts when a model is
# queued, so none running is the normal idle state, not something to fix.
PROCESSING_ON_DEMAND_ENV = "SCANNER_PROCESSING_ON_DEMAND"

Check = dict[str, Any]


def _ok(**facts: Any) -> Check:
    return {"status": "ok", **facts}


def _fail(message: str, **facts: Any) -> Check:
    return {"status": "fail", "message": message, **facts}


def _redis(settings: Settings) -> Redis:
    options = {"socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
               "socket_timeout": REDIS_TIMEOUT_SECONDS, "retry": Retry(NoBackoff(), 0)}
    if settings.redis_url:
        return Redis.from_url(settings.redis_url, **options)
    return Redis(unix_socket_path=str(settings.redis_socket), **options)


def check_database() -> Check:
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means the database cannot be used
        db.session.rollback()
        return _fail("The station cannot reach its database. Check SCANNER_DATABASE_URL and "
                     "that the database server is running.")
    return _ok()


def check_redis(connection: Redis) -> Check:
    try:
        connection.ping()
    except Exception:  # noqa: BLE001 - refused, timed out, wrong password: all "down"
        return _fail("The job queue (Redis) does not answer, so scans and uploads wait. "
                     "'scanner run' restarts it; otherwise start Redis.")
    return _ok()


def check_workers(connection: Redis, now: datetime | None = None) -> Check:
    """A live worker (fresh heartbeat) for the hardware and uploads queues. Processing
    workers are counted but not required: reconstruction may run on another computer, and
    `scanner run` starts its own only when a model is queued (fact processing_on_demand)."""
    from rq import Worker

    now = now or datetime.now(UTC)
    live: dict[str, int] = {HARDWARE_QUEUE: 0, UPLOADS_QUEUE: 0, PROCESSING_QUEUE: 0}
    try:
        workers = Worker.all(connection=connection)
    except Exception:  # noqa: BLE001 - no Redis, no workers to see
        return _fail("The scan worker cannot be seen because the job queue (Redis) does not "
                     "answer.", live=live)
    for worker in workers:
        beat = worker.last_heartbeat
        if beat is None:
            continue
        if beat.tzinfo is None:
            beat = beat.replace(tzinfo=UTC)
        if (now - beat).total_seconds() > WORKER_HEARTBEAT_SECONDS:
            continue
        for name in worker.queue_names():
            if name in live:
                live[name] += 1
    if not live[HARDWARE_QUEUE]:
        return _fail("No scan worker is running, so scans wait in the queue. Start the "
                     "station with 'scanner run' (or 'scanner worker').", live=live)
    if not live[UPLOADS_QUEUE]:
        return _fail("No worker processes uploads, so they stay 'processing'. Start the station "
                     "with 'scanner run' (or 'scanner worker --queues uploads').", live=live)
    return _ok(live=live,
               processing_on_demand=os.environ.get(PROCESSING_ON_DEMAND_ENV) == "1")


def check_disk(settings: Settings) -> Check:
    try:
        free = free_bytes(settings.data_dir)
    except OSError:
        return _fail(f"The data dir {settings.data_dir} cannot be read. Check that its disk "
                     "is mounted.")
    facts = {"free_mb": free // MB, "reserve_mb": settings.disk_reserve_mb}
    if free < settings.disk_reserve_mb * MB:
        return _fail(f"Only {free // MB} MB are free in {settings.data_dir}, under the "
                     f"{settings.disk_reserve_mb} MB reserve: new scans are refused. Delete "
                     "old sessions or exports.", **facts)
    return _ok(**facts)


def check_rig(settings: Settings) -> Check:
    """Who drives the rig, and where the turntable believes it is."""
    from hal.position import PositionStore

    facts: dict[str, Any] = {"driver": settings.hal.driver, "in_use": False}
    path = lock_path(settings.data_dir)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        return _fail(f"The rig's lock file {path} cannot be opened ({exc.strerror}); check "
                     "the data dir's permissions.", **facts)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)  # a probe only: never held
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise
        facts["in_use"] = True
    finally:
        os.close(fd)
    position = PositionStore(settings.hal.position_file).load()
    if position is not None:
        facts["zero"] = position.zero
        facts["move_interrupted"] = position.moving_to is not None and not facts["in_use"]
    return _ok(**facts)


def run_checks(settings: Settings) -> dict[str, Any]:
    """Every check, and "status": "ok" only when all are."""
    connection = _redis(settings)
    try:
        checks = {
            "database": check_database(),
            "redis": check_redis(connection),
            "worker": check_workers(connection),
            "disk": check_disk(settings),
            "rig": check_rig(settings),
        }
    finally:
        connection.close()
    healthy = all(check["status"] == "ok" for check in checks.values())
    return {"status": "ok" if healthy else "fail", "checks": checks}


# --- the banner: asked by every page every few seconds, so cached ---------------------------
_banner_lock = threading.Lock()
_banner_cache: dict[str, tuple[float, dict[str, Any]]] = {}


def queue_status(settings: Settings, max_age: float = BANNER_CACHE_SECONDS) -> dict[str, Any]:
    """{"redis": Check, "worker": Check}, at most `max_age` seconds old (one Redis round trip
    per few seconds, whatever the number of open pages)."""
    key = settings.redis_url or str(settings.redis_socket)
    with _banner_lock:
        cached = _banner_cache.get(key)
        if cached and time.monotonic() - cached[0] < max_age:
            return cached[1]
    connection = _redis(settings)
    try:
        redis_check = check_redis(connection)
        status = {"redis": redis_check,
                  "worker": check_workers(connection) if redis_check["status"] == "ok"
                  else _fail("Scans and uploads wait until the job queue is back.")}
    finally:
        connection.close()
    with _banner_lock:
        _banner_cache[key] = (time.monotonic(), status)
    return status


def require_migrated() -> None:
    """StationError unless `scanner db upgrade` has created the tables."""
    from sqlalchemy import inspect

    from scanner_app.models import ScanSession
    from scanner_app.platform.errors import StationError

    if not inspect(db.engine).has_table(ScanSession.__tablename__):
        raise StationError("The station's database has no tables yet. Run 'scanner db "
                           "upgrade' first (make run does it for you).", code="not_migrated")
