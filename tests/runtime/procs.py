"""Helpers for the runtime tests of real station processes (the processes themselves are
started with tests/support.py)."""

from __future__ import annotations

import contextlib
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


def parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (children, grandchildren, ...), whatever their group."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            ppid = parent_of(int(entry.name))
            if ppid is not None:
                parents.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return {p for p in found if pid_alive(p)}


def station_pids(data_dir: Path) -> set[int]:
    """Live processes whose command line or environment names this station's data dir."""
    needle = str(data_dir).encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in blob and pid_alive(int(entry.name)):
            found.add(int(entry.name))
    return found


def scan_status(data_dir: Path, scan_id: int) -> str | None:
    """A scan's status read straight from the station's SQLite file (no app, no server)."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(data_dir / "scanner.db")) as conn:
        row = conn.execute("SELECT status FROM scans WHERE id = ?", (scan_id,)).fetchone()
    return row[0] if row else None
