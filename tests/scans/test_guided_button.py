"""The start button with a guided scan: while the scan waits for someone to set the camera (it
is paused with a message, as scans/rings.py leaves it), the status LED blinks and a press
continues that scan instead of trying to start another."""

from __future__ import annotations

from sqlalchemy import select, update

from hal.mock.button import MockButton
from scanner_app.models import Scan, ScanStatus
from scanner_app.platform.extensions import db
from scanner_app.runtime.button_daemon import ButtonDaemon
from scanner_app.scans.rings import set_camera_message


def _scans(app) -> list[Scan]:
    with app.app_context():
        scans = list(db.session.scalars(select(Scan).order_by(Scan.id)))
        db.session.expunge_all()
        return scans


def test_a_press_continues_a_scan_waiting_for_the_camera(sqlite_app, private_redis) -> None:
    button = MockButton()
    daemon = ButtonDaemon(sqlite_app, button, flash_seconds=0.3)
    button.press()
    [scan] = _scans(sqlite_app)
    assert daemon.poll_once() == "busy" and button.led == "on"
    # The job asks for the camera at 35° and waits, paused (what the job writes).
    message = set_camera_message(35)
    assert message == "Set the camera to 35° and press the button or Resume."
    with sqlite_app.app_context():
        db.session.execute(update(Scan).where(Scan.id == scan.id).values(
            status=ScanStatus.PAUSED, control="pause", message=message))
        db.session.commit()
    assert daemon.poll_once() == "error" and button.led == "blinking"
    button.press()
    [after] = _scans(sqlite_app)  # no second scan was started
    assert after.id == scan.id and after.control is None  # the job goes on at its next check
    # Once the job took the next frame (it clears the message), the LED shows busy again.
    with sqlite_app.app_context():
        db.session.execute(update(Scan).where(Scan.id == scan.id).values(
            status=ScanStatus.RUNNING, message=None))
        db.session.commit()
    assert daemon.poll_once() == "busy" and button.led == "on"
