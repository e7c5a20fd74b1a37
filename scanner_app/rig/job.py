"""Manual controls of the rig: short RQ jobs on the `hardware` queue, run by the worker that
owns the rig (the web process never touches hardware). Each takes the hardware lock, opens
the rig, does one thing (turn to an angle or by a step, tilt, home), and closes the rig again
(motor released, light off), whatever happened. It answers with the rig's state, which it
also publishes for the page (rig/channel.py)."""

from __future__ import annotations

import logging
from typing import Any

from hal import HardwareError, Rig, load_rig
from scanner_app.config import current_settings
from scanner_app.platform import queues
from scanner_app.platform.clock import iso, utcnow
from scanner_app.platform.hardware_lock import HardwareBusy, hardware_lock
from scanner_app.platform.queues import RIG_CONTROL_JOB, job_app_context, on_horse_killed
from scanner_app.rig import channel
from scanner_app.rig.actions import RigAction

log = logging.getLogger("scanner.rig")

LOCK_WAIT_SECONDS = 20.0
BUSY = ("Another process is using the scanner hardware, so the rig was not moved. Wait until "
        "it is done, then try again.")


def rig_state(rig: Rig, light_on: bool | None = None) -> dict[str, Any]:
    """What the page and the API show of the rig (JSON-ready)."""
    turntable = rig.turntable
    tilt = None
    if rig.tilt is not None:
        tilt = {"elevation_deg": round(rig.tilt.elevation_deg, 3),
                "min_elevation_deg": rig.tilt.min_elevation_deg,
                "max_elevation_deg": rig.tilt.max_elevation_deg}
    return {
        "driver": rig.driver,
        "angle_deg": round(turntable.angle_deg, 3),
        "position_known": turntable.position_known,
        "position_note": turntable.position_note,
        "light_on": rig.light.is_on if light_on is None else light_on,
        "motor_enabled": turntable.is_enabled,
        "tilt": tilt,
        "updated_at": iso(utcnow()),
    }


def _act(rig: Rig, action: RigAction, value: float | None) -> None:
    turntable = rig.turntable
    if action is RigAction.TURN_TO:
        turntable.move_to(float(value or 0.0))
    elif action is RigAction.TURN_BY:
        turntable.rotate_by(float(value or 0.0))
    elif action is RigAction.HOME:
        turntable.home()
        if rig.tilt is not None:
            rig.tilt.home()
    elif action is RigAction.TILT_TO:
        if rig.tilt is None:
            raise HardwareError("This rig has no tilt axis: set the camera's elevation by "
                                "hand.")
        rig.tilt.move_to(float(value or 0.0))


def run_control(action: str, value: float | None = None) -> dict[str, Any]:
    """Do `action` on the rig; returns {"ok": true, "state": ...} or {"ok": false,
    "busy": bool, "error": sentence}."""
    with job_app_context():
        settings = current_settings()
        what = RigAction(action)
        try:
            with hardware_lock(settings.data_dir, LOCK_WAIT_SECONDS):
                rig = load_rig(settings.hal)
                try:
                    _act(rig, what, value)
                    state = rig_state(rig, light_on=False)  # closed below: light off
                finally:
                    rig.close()  # light off, motor released, camera closed
        except HardwareBusy:
            return {"ok": False, "busy": True, "error": BUSY}
        except HardwareError as exc:
            log.warning("Rig control %s failed: %s", what.value, exc)
            return {"ok": False, "busy": False, "error": str(exc)}
        state["motor_enabled"] = False
        try:
            channel.publish_state(queues.redis_connection(settings), state)
        except queues.QUEUE_ERRORS as exc:  # the answer still carries the state
            log.warning("Could not publish the rig's state: %s", exc)
        log.info("Rig control %s %s: platter at %.2f°", what.value,
                 "" if value is None else value, state["angle_deg"])
        return {"ok": True, "state": state}


@on_horse_killed(RIG_CONTROL_JOB)
def control_horse_killed(job: Any, how: str) -> None:
    """The worker switched the rig off already; the page's wait reads the failed job."""
    log.warning("Rig control job %s %s", job.id, how)
