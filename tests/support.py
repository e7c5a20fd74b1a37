"""Plain helpers shared by the test folders: the environment of a station process, running
`scanner ...` as a real subprocess, polling with a deadline, free ports, and API clients.
(Fixtures live in tests/conftest.py.)"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Fast mock hardware for processes that scan: the quick profile's 0.2 s settle time dominates
# (about 0.3 s a frame).
FAST = {"SCANNER_MOCK_CAPTURE_SECONDS": "0.02", "SCANNER_MOCK_SECONDS_PER_REV": "1"}


def station_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a station process (or load_settings) under test."""
    env = {
        "SCANNER_DATA_DIR": str(data_dir),
        "SCANNER_HAL": "mock",
        "SCANNER_MOCK_CAPTURE_SECONDS": "0.01",
        "SCANNER_MOCK_SECONDS_PER_REV": "0.5",
        "SCANNER_TIMEZONE": "UTC",
    }
    env.update(extra)
    return env


def process_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The machine's environment without any SCANNER_* setting, plus a test station's with
    FAST mock hardware. Without SCANNER_REDIS_URL in `extra` the station uses its private
    Redis socket in `data_dir`. PYTHONPATH: the processes run this checkout's code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANNER_")}
    env.update(station_env(data_dir, **FAST))
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    return env


def cli(*args: str) -> list[str]:
    """The command line of `scanner <args>` with this Python."""
    return [sys.executable, "-m", "scanner_app.cli", *args]


def run_cli(data_dir: Path, *args: str, input: str | None = None, timeout: float = 60,
            **extra: str) -> subprocess.CompletedProcess:
    """Run `scanner <args>` to its end on a test station's environment (text output)."""
    return subprocess.run(cli(*args), env=process_env(data_dir, **extra), input=input,
                          capture_output=True, text=True, timeout=timeout)


def wait_until(check: Callable[[], Any], timeout: float, what: str,
               interval: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy, and return that; fail naming `what`
    at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    """A local TCP port nothing listens on (for a server to bind, or for "Redis is down")."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_processes(*procs: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM every process still running (all first, so they stop side by side), then wait
    for each; one that outlasts `timeout` is killed."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class Proc:
    """A station process whose combined output is collected line by line."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.popen = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, bufsize=1)
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.popen.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def wait_line(self, text: str, timeout: float = 30) -> str:
        def found() -> str | None:
            if self.popen.poll() is not None and text not in self.output:
                raise AssertionError(f"process exited ({self.popen.returncode}) before "
                                     f"printing {text!r}:\n{self.output}")
            with self._lock:
                return next((line for line in self.lines if text in line), None)

        return wait_until(found, timeout, f"output line {text!r}")

    def count(self, text: str) -> int:
        with self._lock:
            return sum(text in line for line in self.lines)

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        code = self.popen.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        stop_processes(self.popen)


def start_process(args: list[str], env: dict[str, str], ready: str,
                  timeout: float = 30) -> Proc:
    """Start a station process and wait until it prints a line containing `ready`; if it
    never does, it is stopped before the failure is raised."""
    proc = Proc(args, env)
    try:
        proc.wait_line(ready, timeout)
    except BaseException:
        proc.kill()
        raise
    return proc


def api_client(app, name: str = "tests"):
    """A test client of `app` that sends a new API key on every request."""
    from scanner_app.accounts.service import create_api_key

    with app.app_context():
        key = create_api_key(name)
    client = app.test_client()
    client.environ_base["HTTP_X_API_KEY"] = key
    return client


def dispose(app) -> None:
    """Close the app's database connections (a test's database can then be dropped)."""
    from scanner_app.platform.extensions import db

    with app.app_context():
        db.engine.dispose()


def jpeg_bytes(size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (40, 120, 110),
               seed: int | None = None) -> bytes:
    """A small, valid JPEG; `seed` varies the colour so files differ (and are not duplicates)."""
    import io

    from PIL import Image

    if seed is not None:
        color = (seed * 37 % 256, 120, 110)
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def session_row(app, session_id: int):
    """The session's row as it is now, detached (readable outside the app context), or None."""
    from scanner_app.models import ScanSession
    from scanner_app.platform.extensions import db

    with app.app_context():
        row = db.session.get(ScanSession, session_id)
        if row is not None:
            db.session.expunge(row)
        return row
