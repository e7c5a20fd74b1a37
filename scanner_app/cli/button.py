"""`scanner button`: run the start-button daemon (scanner_app/runtime/button_daemon.py).

`scanner button --press` / `--hold` play the person at the button of the daemon running for
this data dir (it reads its pid from <data dir>/button.pid and sends SIGUSR1 / SIGUSR2), for
demos and tests on mock hardware; on a Pi they act as if the real button had been used.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from scanner_app.config import settings_of
from scanner_app.platform.storage import atomic_write_bytes

PID_NAME = "button.pid"
SIGNALS = {"press": signal.SIGUSR1, "hold": signal.SIGUSR2}


def _signal_daemon(pid_path: Path, action: str) -> None:
    try:
        pid = int(pid_path.read_text().strip())
        os.kill(pid, SIGNALS[action])
    except (OSError, ValueError):
        raise click.ClickException(
            f"No button daemon is running for this data dir (no live pid in {pid_path}). "
            "Start it with 'scanner button' or 'scanner run'."
        ) from None
    click.echo(f"Sent a button {action} to the button daemon (pid {pid}).")


@click.command("button", help="Run the start-button daemon (press: start a scan; "
                              "hold: cancel it; the LED shows the scan state).")
@click.option("--press", "action", flag_value="press",
              help="Press the button of the running daemon once, then exit.")
@click.option("--hold", "action", flag_value="hold",
              help="Hold the button of the running daemon (cancels the scan), then exit.")
@with_appcontext
def button(action: str | None) -> None:
    from hal import HardwareError, load_button
    from scanner_app.runtime.button_daemon import ButtonDaemon

    app = current_app._get_current_object()
    settings = settings_of(app)
    pid_path = settings.data_dir / PID_NAME
    if action:
        _signal_daemon(pid_path, action)
        return

    if not logging.getLogger().handlers:
        # What the daemon did (presses, LED changes) is its log: show it, INFO included.
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("scanner").setLevel(logging.INFO)
    try:
        device = load_button(settings.hal)
    except HardwareError as exc:
        raise click.ClickException(str(exc)) from None
    daemon = ButtonDaemon(app, device)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: daemon.stop())
    signal.signal(signal.SIGUSR1, lambda *_: daemon.request("press"))
    signal.signal(signal.SIGUSR2, lambda *_: daemon.request("hold"))
    atomic_write_bytes(pid_path, f"{os.getpid()}\n".encode())
    click.echo(f"Button daemon ready ({settings.hal.driver} hardware): press to start a scan, "
               "hold to cancel it.")
    try:
        daemon.run()
    finally:
        try:
            if pid_path.read_text().strip() == str(os.getpid()):
                pid_path.unlink()
        except OSError:
            pass
    click.echo("Button daemon stopped.")
