"""One process at a time drives the rig: an exclusive flock on <data dir>/hardware.lock.

A file lock rather than a Redis lock because the kernel drops it the moment its holder dies
(even by SIGKILL): a resumed scan never waits for a lock left behind by a killed worker.
Anything else that opens the rig (e.g. `scanner hal check`) should take the same lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

LOCK_NAME = "hardware.lock"


class HardwareBusy(Exception):
    """Another process holds the hardware lock; the message says what to do."""


def lock_path(data_dir: Path) -> Path:
    return Path(data_dir) / LOCK_NAME


@contextlib.contextmanager
def hardware_lock(
    data_dir: Path,
    wait_seconds: float = 20.0,
    poll_seconds: float = 0.2,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[None]:
    """Hold the rig exclusively; wait up to `wait_seconds`, then raise HardwareBusy."""
    path = lock_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline or (should_stop and should_stop()):
                    holder = _holder(path)
                    raise HardwareBusy(
                        "Another process is using the scanner hardware"
                        f"{f' (process {holder})' if holder else ''}, so the scan could not "
                        "start. Wait until it is done (or stop it), then resume the scan."
                    ) from None
                time.sleep(poll_seconds)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # for the message above and for people
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
