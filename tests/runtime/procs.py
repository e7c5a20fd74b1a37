"""Helpers for the runtime tests of real station processes (the processes themselves are
started with tests/support.py)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.support import run_cli


def upgrade_and_key(data_dir: Path) -> str:
    """Migrate the station's database and create an API key (the last word printed)."""
    done = run_cli(data_dir, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    made = run_cli(data_dir, "apikey", "create", "runtime-tests")
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[-1].split()[-1]


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
