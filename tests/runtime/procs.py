"""Helpers for tests that run real station processes (`python -m scanner_app.cli ...`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import station_env

# Fast mock hardware for end-to-end scans.
FAST = {"SCANNER_MOCK_CAPTURE_SECONDS": "0.02", "SCANNER_MOCK_SECONDS_PER_REV": "1"}


def process_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The machine's environment without any SCANNER_* setting, plus a test station's.
    No SCANNER_REDIS_URL: the station uses its private Redis socket in `data_dir`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANNER_")}
    env.update(station_env(data_dir, **FAST))
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "scanner_app.cli", *args]


def run_cli(data_dir: Path, *args: str, input: str | None = None, timeout: float = 60,
            **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(cli(*args), env=process_env(data_dir, **extra), input=input,
                          capture_output=True, text=True, timeout=timeout)


def upgrade_and_key(data_dir: Path) -> str:
    """Migrate the station's database and create an API key (the last word printed)."""
    done = run_cli(data_dir, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    made = run_cli(data_dir, "apikey", "create", "runtime-tests")
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[-1].split()[-1]


def wait_for(condition: Callable[[], Any], timeout: float, what: str,
             interval: float = 0.05) -> Any:
    """Poll `condition` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


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

        return wait_for(found, timeout, f"output line {text!r}")

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
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def http(method: str, url: str, key: str | None = None, body: Any = None,
         timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if key:
        request.add_header("X-Api-Key", key)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")  # a zombie has stopped; only its parent's wait is missing
