"""The start-button daemon: in a real `scanner button` process (pressed from outside through
signals and `scanner button --press/--hold`), and in-process to watch its status LED."""

from __future__ import annotations

import signal
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from hal.mock.button import MockButton
from scanner_app.models import Scan
from scanner_app.platform.clock import utcnow
from scanner_app.platform.extensions import db
from scanner_app.runtime.button_daemon import ButtonDaemon
from tests.support import cli, process_env, run_cli, session_row, start_process, wait_until


def _scans(app) -> list[Scan]:
    with app.app_context():
        scans = list(db.session.scalars(select(Scan).order_by(Scan.id)))
        db.session.expunge_all()
        return scans


@pytest.fixture
def daemon_process(sqlite_app, data_dir, private_redis):
    """`scanner button` on the app's data dir and private Redis (no worker: scans stay
    queued, which is what "a scan is active" needs)."""
    proc = start_process(cli("button"), process_env(data_dir), ready="Button daemon ready")
    yield proc
    proc.kill()


def test_press_starts_one_button_scan_in_todays_session_and_hold_cancels_it(
        sqlite_app, data_dir, daemon_process):
    pid_file = data_dir / "button.pid"
    assert int(pid_file.read_text()) == daemon_process.popen.pid

    pressed = run_cli(data_dir, "button", "--press")
    assert pressed.returncode == 0, pressed.stderr
    scans = wait_until(lambda: _scans(sqlite_app), 20, "the pressed button to start a scan")
    assert len(scans) == 1
    scan = scans[0]
    assert (scan.source, scan.status) == ("button", "queued")
    session = session_row(sqlite_app, scan.session_id)
    assert session.kind == "auto"
    assert session.day == datetime.now(UTC).date()  # the test station's zone is UTC
    assert (data_dir / "sessions" / str(session.id) / "metadata" / "session.json").exists()

    # A second press while that scan is active starts nothing.
    daemon_process.signal(signal.SIGUSR1)
    daemon_process.wait_line("nothing started")
    assert [s.id for s in _scans(sqlite_app)] == [scan.id]

    # Holding the button cancels the active scan.
    held = run_cli(data_dir, "button", "--hold")
    assert held.returncode == 0, held.stderr
    wait_until(lambda: _scans(sqlite_app)[0].status == "cancelled", 20, "the scan to be cancelled")
    daemon_process.wait_line("Button held: cancelling scan")

    # With nothing active any more, a press starts the next scan in the same session.
    daemon_process.signal(signal.SIGUSR1)
    scans = wait_until(lambda: (s := _scans(sqlite_app)) and len(s) == 2 and s, 20,
                       "a second scan")
    assert scans[1].session_id == scan.session_id and scans[1].source == "button"

    daemon_process.signal(signal.SIGTERM)
    assert daemon_process.wait(20) == 0
    assert not pid_file.exists()


def test_press_with_no_daemon_running_says_so(data_dir):
    done = run_cli(data_dir, "button", "--press")
    assert done.returncode != 0
    assert "No button daemon is running" in done.stderr


def test_status_led_follows_the_scan_state(sqlite_app, private_redis):
    button = MockButton()
    daemon = ButtonDaemon(sqlite_app, button, flash_seconds=0.3)
    assert daemon.poll_once() == "idle" and button.led == "off"

    button.press()
    assert button.status == "busy"
    [scan] = _scans(sqlite_app)
    assert daemon.poll_once() == "busy" and button.led == "on"

    button.press()  # a scan is active: a short error blink, then busy again
    assert button.status == "error"
    assert len(_scans(sqlite_app)) == 1
    wait_until(lambda: daemon.poll_once() == "busy" and button.status == "busy", 5,
               "the error blink to end")

    button.hold()
    assert _scans(sqlite_app)[0].status == "cancelled"
    assert daemon.poll_once() == "idle" and button.status == "idle"

    # A scan that failed (the worker says so) shows "error" until the next press.
    button.press()
    second = _scans(sqlite_app)[-1]
    with sqlite_app.app_context():
        db.session.execute(update(Scan).where(Scan.id == second.id).values(
            status="failed", error="The camera was unplugged.", finished_at=utcnow()))
        db.session.commit()
    assert daemon.poll_once() == "error" and button.led == "blinking"
    assert daemon.poll_once() == "error"  # it stays until someone uses the button
    button.press()  # acknowledges the failure and starts a new scan
    assert daemon.poll_once() == "busy"
    button.hold()
    assert daemon.poll_once() == "idle"


def test_press_when_the_queue_is_down_blinks_and_leaves_nothing(sqlite_app):
    button = MockButton()  # no private Redis was started for this data dir
    daemon = ButtonDaemon(sqlite_app, button, flash_seconds=60)
    button.press()
    assert button.status == "error"
    assert daemon.poll_once() == "idle"  # the station is idle; the LED still blinks
    assert button.status == "error"
    assert _scans(sqlite_app) == []


def test_an_old_failure_is_not_shown_when_the_daemon_starts(sqlite_app):
    from scanner_app.sessions.resolver import resolve_session

    with sqlite_app.app_context():
        session_id = resolve_session(None)
        db.session.add(Scan(session_id=session_id, status="failed", profile="quick",
                            frames_planned=4, source="web"))
        db.session.commit()
    daemon = ButtonDaemon(sqlite_app, MockButton())
    assert daemon.poll_once() == "idle"


def test_daemon_loop_serves_requests_and_stops(sqlite_app, private_redis):
    import threading

    button = MockButton()
    daemon = ButtonDaemon(sqlite_app, button, poll_seconds=0.05)
    loop = threading.Thread(target=daemon.run)
    loop.start()
    daemon.request("press")
    wait_until(lambda: len(_scans(sqlite_app)) == 1, 10, "a scan from the requested press")
    wait_until(lambda: daemon.shown == "busy", 5, "the LED to show busy")
    daemon.request("hold")
    wait_until(lambda: _scans(sqlite_app)[0].status == "cancelled", 10, "the cancel")
    daemon.stop()
    loop.join(10)
    assert not loop.is_alive()
    assert button.closed
