"""The idle rig, from the web process: its state, the manual controls and the preview's job.

The web never touches hardware: a control is a short job on the `hardware` queue
(rig/job.py), run by the worker that owns the rig, whose answer (the rig's new state) the
request waits for; the preview is a job too (rig/preview_job.py), kept running while someone
watches. Every control is refused (409, with a sentence) while a scan is queued, running or
paused, or a calibration holds the rig: a scan takes priority.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import time
import uuid
from typing import Any

from redis import Redis
from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from hal import rig_is_mock
from scanner_app.config import Settings, current_settings
from scanner_app.platform import queues
from scanner_app.platform.errors import BadRequest, Conflict, ServiceUnavailable
from scanner_app.platform.extensions import db
from scanner_app.rig import channel
from scanner_app.rig.actions import RigAction
from scanner_app.scans import service as scans

log = logging.getLogger("scanner.rig")

CONTROL_WAIT_SECONDS = 90.0  # a full turn of a slow platter, homing included
LIGHT_WAIT_SECONDS = 15.0
LIGHT_HOLD_SECONDS = 60.0  # "light on" from a script: lit this long without a watcher
BUTTON_PID = "button.pid"  # as `scanner button` writes it
QUEUE_UNAVAILABLE = ("The job queue (Redis) is not reachable, so the rig cannot be reached. "
                     "Start the station with 'scanner run' or check SCANNER_REDIS_URL.")
NO_WORKER = ("No worker drives the rig, so nothing was done. Start the station with "
             "'scanner run' (or 'scanner worker --queues hardware').")
UNEXPECTED = ("The rig control failed unexpectedly; the details are in the worker's log. "
              "Try again, and report it if it keeps happening.")
_LIVE = (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED)


def connection(settings: Settings | None = None) -> Redis:
    return queues.redis_connection(settings or current_settings())


# --- reading ---------------------------------------------------------------------------

def busy_reason() -> str | None:
    """Why the rig is not free for a manual control, or None."""
    scan = scans.active_scan()
    db.session.rollback()  # no read transaction left open (streams call this repeatedly)
    if scan is not None:
        return (f"Scan {scan.id} is {scan.status} and has the rig to itself: wait for it to "
                "finish or cancel it, then try again.")
    run = scans.calibration_run()
    if run is not None and run.status.is_active:
        return "A calibration has the rig to itself: wait for it to finish, then try again."
    return None


def rig_status() -> dict[str, Any]:
    """What the page and GET /api/v1/rig show: the rig as the last job left it (or null),
    whether it is busy and why, and whether a preview is live."""
    settings = current_settings()
    busy = busy_reason()
    state, live, light = None, False, True
    try:
        redis = connection(settings)
        state = channel.last_state(redis)
        live = channel.latest_frame(redis)[1] is not None
        light = channel.light_wanted(redis)
    except queues.QUEUE_ERRORS as exc:
        log.warning("Cannot read the rig's state from Redis: %s", exc)
    tilt = settings.hal.tilt
    axis = ({"min_elevation_deg": tilt.min_elevation_deg,
             "max_elevation_deg": tilt.max_elevation_deg} if tilt.is_motorised else None)
    return {"state": state, "busy": busy, "preview_live": live, "preview_light": light,
            "mock_hardware": rig_is_mock(settings.hal), "tilt_axis": axis}


# --- the preview job ---------------------------------------------------------------------

def ensure_preview(redis: Redis, settings: Settings) -> str | None:
    """Queue a preview job unless one is queued or running; returns its id. None while a
    scan or calibration has the rig (the preview then shows the scan's last frame)."""
    if busy_reason() is not None:
        return None
    if (current := preview_job(redis)) is not None:
        return current
    hardware = queues.queue(settings, queues.HARDWARE_QUEUE, redis)
    if not Worker.count(connection=redis, queue=hardware):
        return None  # nothing would take it: the stream shows its placeholder meanwhile
    job_id = f"preview-{uuid.uuid4().hex[:12]}"
    redis.set(channel.JOB_KEY, job_id, ex=queues.PREVIEW_JOBS.timeout)
    queues.enqueue(settings, queues.PREVIEW_JOBS, connection=redis, job_id=job_id,
                   description="Live preview")
    return job_id


def preview_job(redis: Redis) -> str | None:
    """The id of the preview job that is queued or running, or None."""
    current = redis.get(channel.JOB_KEY)
    if current is None:
        return None
    try:
        job = Job.fetch(current.decode(), connection=redis)
    except NoSuchJobError:
        return None
    return current.decode() if job.get_status(refresh=False) in _LIVE else None


def watch_preview(seconds: float = channel.WATCH_SECONDS) -> Redis:
    """Someone watches: keep (or get) the preview running. ServiceUnavailable when Redis is
    down."""
    settings = current_settings()
    redis = connection(settings)
    try:
        channel.watch(redis, seconds)
        ensure_preview(redis, settings)
    except queues.QUEUE_ERRORS as exc:
        log.warning("Cannot keep the preview going: %s", exc)
        raise ServiceUnavailable(QUEUE_UNAVAILABLE, code="queue_unavailable") from None
    return redis


# --- controls ----------------------------------------------------------------------------

def _number(value: object, what: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadRequest(f"{what} must be a number from {low:g} to {high:g}.",
                         code="invalid_value")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or not low <= number <= high:
        raise BadRequest(f"{what} must be a number from {low:g} to {high:g}.",
                         code="invalid_value")
    return number


def check_value(action: RigAction, value: object) -> float | None:
    if action is RigAction.TURN_TO:
        return _number(value, "The angle", 0, 360) % 360.0
    if action is RigAction.TURN_BY:
        return _number(value, "The step", -360, 360)
    if action is RigAction.TILT_TO:
        return _number(value, "The elevation", -90, 90)
    return None


def _require_rig(redis: Redis) -> None:
    if (why := busy_reason()) is not None:
        raise Conflict(why, code="rig_busy")
    try:
        redis.ping()
        hardware = queues.queue(current_settings(), queues.HARDWARE_QUEUE, redis)
        workers = Worker.all(connection=redis, queue=hardware)
    except queues.QUEUE_ERRORS as exc:
        log.warning("Redis is not reachable: %s", exc)
        raise ServiceUnavailable(QUEUE_UNAVAILABLE, code="queue_unavailable") from None
    if not workers:  # 409: the station's state, not an outage of the queue
        raise Conflict(NO_WORKER, code="no_worker")


def _wait(job: Job, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = job.get_status(refresh=True)
        if status is JobStatus.FINISHED:
            return job.return_value() or {}
        if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
            return {"ok": False, "busy": False, "error": UNEXPECTED}
        time.sleep(0.05)
    raise ServiceUnavailable(
        f"The rig did not answer within {seconds:.0f} s; the control may still be carried "
        "out. Check the worker's log, then look at the rig again.", code="rig_timeout")


def control(action: str, value: object = None) -> dict[str, Any]:
    """Carry out `action` through the worker and return the rig's new state."""
    try:
        what = RigAction(action)
    except ValueError:
        raise BadRequest(f"There is no rig control {action!r}. Use one of: "
                         f"{', '.join(a.value for a in RigAction)}.", code="invalid_action"
                         ) from None
    number = check_value(what, value)
    settings = current_settings()
    redis = connection(settings)
    _require_rig(redis)
    try:
        job = queues.enqueue(settings, queues.RIG_CONTROL_JOBS, what.value, number,
                             connection=redis, job_id=f"rig-{uuid.uuid4().hex[:12]}",
                             description=what.label)
    except queues.QUEUE_ERRORS:
        raise ServiceUnavailable(QUEUE_UNAVAILABLE, code="queue_unavailable") from None
    answer = _wait(job, CONTROL_WAIT_SECONDS)
    if not answer.get("ok"):
        error = answer.get("error") or UNEXPECTED
        raise Conflict(error, code="rig_busy" if answer.get("busy") else "rig_failed")
    return answer["state"]


def set_light(on: bool) -> dict[str, Any]:
    """The light of the preview (on as a scan has it, or off). Switched on, it stays lit while
    the preview is watched, at least LIGHT_HOLD_SECONDS; the rig is switched off (light off)
    when nobody watches. Returns the rig's state once the worker applied it."""
    settings = current_settings()
    redis = connection(settings)
    _require_rig(redis)
    channel.want_light(redis, on)
    if on:
        channel.watch(redis, LIGHT_HOLD_SECONDS)
        ensure_preview(redis, settings)
    elif preview_job(redis) is None:  # nothing holds the rig: its light is off
        return {**(channel.last_state(redis) or {}), "light_on": False}
    deadline = time.monotonic() + LIGHT_WAIT_SECONDS
    while time.monotonic() < deadline:
        state = channel.last_state(redis)
        if state is not None and state.get("light_on") is on:
            return state
        time.sleep(0.05)
    raise ServiceUnavailable(f"The light was not switched {'on' if on else 'off'} within "
                             f"{LIGHT_WAIT_SECONDS:.0f} s. Check the worker's log.",
                             code="rig_timeout")


def snapshot_into_session(source: str = "web", browser: bool = False) -> Any:
    """One frame into the session new work goes to (resolved once, by the scans service): a
    one-frame scan, so it lands in images/scans/<id>/ with its metadata like any frame, and
    is shown as a snapshot (its profile is "snapshot")."""
    if (why := busy_reason()) is not None:
        raise Conflict(why, code="rig_busy")
    return scans.start_scan(None, snapshot=True, source=source, browser=browser)


def press_button() -> None:
    """The virtual start button (mock hardware only): a press of the button daemon's mock
    button, as `scanner button --press` sends it."""
    settings = current_settings()
    if not rig_is_mock(settings.hal):
        raise Conflict("The virtual start button exists only on mock hardware; press the "
                       "real button at the rig.", code="not_mock")
    pid_path = settings.data_dir / BUTTON_PID
    try:
        os.kill(int(pid_path.read_text().strip()), signal.SIGUSR1)
    except (OSError, ValueError):
        raise Conflict("No button daemon is running, so the button was not pressed. Start "
                       "it with 'scanner button' or 'scanner run'.", code="no_button") from None
