"""The start-button daemon: the one owner of the StartButton and its status LED.

Press: start a scan in the session new work goes to (resolved once, inside start_scan) with
source "button". A press while a scan is queued, running or paused starts nothing; the LED
blinks "error" for a moment instead; but while a guided scan waits for the person at the rig
(its `message` says what to do), a press continues it. Hold: cancel the active scan, if any.

The LED follows the station, polled about once a second: "busy" while a scan is queued,
running or paused (whoever started it), "error" after a scan failed or was interrupted until
the button is pressed or held again, "idle" otherwise; it blinks ("error") while a guided
scan waits for someone.

Callbacks arrive on gpiozero's threads (real button) or on the daemon's loop (mock button,
pressed from outside through `request()`); each pushes an app context of its own, so each
gets its own database session.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from flask import Flask
from sqlalchemy import select

from hal import StartButton
from scanner_app.models import Scan
from scanner_app.platform.errors import StationError
from scanner_app.platform.extensions import db

log = logging.getLogger("scanner.button")

class ButtonDaemon:
    def __init__(self, app: Flask, button: StartButton, *, poll_seconds: float = 1.0,
                 flash_seconds: float = 2.0) -> None:
        self.app = app
        self.button = button
        self.poll_seconds = poll_seconds
        self.flash_seconds = flash_seconds
        # SimpleQueue.put is safe to call from a signal handler (Queue.put is not).
        self._requests: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._stopping = False
        self._lock = threading.Lock()
        self._flash_until = 0.0
        self._shown: str | None = None
        self._acknowledged_id = 0  # failed scans up to this id are no longer shown
        with app.app_context():
            self._acknowledge()  # an old failure from before this start is not news
        button.when_pressed = self.on_press
        button.when_held = self.on_hold

    # --- LED ---------------------------------------------------------------------------
    @property
    def shown(self) -> str | None:
        """What the LED shows now: "idle", "busy" or "error"."""
        return self._shown

    def _show(self, state: str) -> None:
        with self._lock:
            if state == self._shown:
                return  # set_status restarts a blink; only call it on a change
            self._shown = state
        self.button.set_status(state)
        log.info("Status LED: %s", state)

    def _flash_error(self) -> None:
        with self._lock:
            self._flash_until = time.monotonic() + self.flash_seconds
        self._show("error")

    def _acknowledge(self) -> None:
        latest = db.session.scalar(select(Scan.id).order_by(Scan.id.desc()).limit(1))
        with self._lock:
            self._acknowledged_id = max(self._acknowledged_id, latest or 0)

    def station_state(self) -> str:
        """What the LED should show, from the database (needs an app context)."""
        from scanner_app.scans.service import active_scan

        active = active_scan()
        if active is not None:
            return "error" if active.message else "busy"  # blinking: do what the UI says
        latest = db.session.execute(
            select(Scan.id, Scan.status).order_by(Scan.id.desc()).limit(1)
        ).first()
        # A scan that ended failed or interrupted needs a person's attention.
        if latest and latest.status.needs_attention and latest.id > self._acknowledged_id:
            return "error"
        return "idle"

    def poll_once(self) -> str:
        with self.app.app_context():
            state = self.station_state()
        with self._lock:
            flashing = time.monotonic() < self._flash_until
        self._show("error" if flashing else state)
        return state

    # --- button callbacks (gpiozero threads, or the daemon loop for the mock) -------------
    def on_press(self) -> None:
        from scanner_app.scans.service import active_scan, resume_scan, start_scan

        with self.app.app_context():
            self._acknowledge()
            waiting = active_scan()
            if waiting is not None and waiting.message:
                self._continue(waiting.id, resume_scan)
                return
            try:
                scan = start_scan(None, source="button")
            except StationError as exc:
                db.session.rollback()
                if exc.status == 409:
                    log.info("Button pressed while a scan is active; nothing started (%s)",
                             exc.message)
                else:
                    log.warning("Button pressed, but no scan could start: %s", exc.message)
                self._flash_error()
                return
            except Exception:
                db.session.rollback()
                log.exception("Button pressed, but starting a scan failed")
                self._flash_error()
                return
            log.info("Button pressed: scan %s queued in session %s", scan.id, scan.session_id)
        self._show("busy")

    def _continue(self, scan_id: int, resume_scan) -> None:
        """The person at the rig did what the guided scan asked: carry on."""
        try:
            resume_scan(scan_id)
        except StationError as exc:
            db.session.rollback()
            log.warning("Button pressed, but scan %s could not continue: %s", scan_id,
                        exc.message)
            self._flash_error()
            return
        log.info("Button pressed: scan %s continues", scan_id)
        self._show("busy")

    def on_hold(self) -> None:
        from scanner_app.scans.service import active_scan, cancel_scan

        with self.app.app_context():
            self._acknowledge()
            scan = active_scan()
            if scan is None:
                log.info("Button held, but no scan is active; nothing to cancel")
                self._show("idle")
                return
            try:
                cancel_scan(scan.id)
            except StationError as exc:
                db.session.rollback()
                log.warning("Button held, but scan %s could not be cancelled: %s",
                            scan.id, exc.message)
                self._flash_error()
                return
            log.info("Button held: cancelling scan %s", scan.id)

    # --- the loop ------------------------------------------------------------------------
    def request(self, what: str) -> None:
        """Ask the loop to "press", "hold" or "stop". Safe from signal handlers and threads."""
        if what == "stop":
            self._stopping = True
        self._requests.put(what)

    def stop(self) -> None:
        self.request("stop")

    def _act(self, what: str) -> None:
        # The mock button plays the person (its press() fires when_pressed like a real
        # release would); a real button cannot be pressed by software, so call the handler.
        handlers = {"press": self.on_press, "hold": self.on_hold}
        if what not in handlers:
            return
        play = getattr(self.button, what, None)
        if callable(play):
            play()
        else:
            handlers[what]()

    def run(self) -> None:
        """Poll and serve requests until stop(); closes the button at the end."""
        failing = False
        try:
            while not self._stopping:
                try:
                    what = self._requests.get(timeout=self.poll_seconds)
                except queue.Empty:
                    what = None
                if what == "stop" or self._stopping:
                    break
                if what:
                    self._act(what)
                try:
                    self.poll_once()
                    if failing:
                        log.info("The database answers again")
                    failing = False
                except Exception as exc:  # keep the button alive while the database is away
                    if not failing:
                        log.warning("Cannot read the scan state (%s); retrying", exc)
                    failing = True
        finally:
            self.button.close()
