"""One part of `scanner run` and its restart policy, like systemd's Restart=on-failure with
StartLimitBurst=/StartLimitIntervalSec=: restart after a back-off that doubles with each recent
failure (0.5 s, 1 s, 2 s ... at most MAX_BACKOFF), and give up after `limit` failures within
`window` seconds. A part that crashes at once every time (port in use, broken config) then
stops the station within seconds, with its last lines above, instead of looping forever.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

RESTART_LIMIT = 5
RESTART_WINDOW = 60.0
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 10.0


def child_command(*args: str) -> list[str]:
    """The `scanner` CLI of this very installation, whatever PATH says."""
    return [sys.executable, "-m", "scanner_app.cli", *args]


@dataclass
class Part:
    name: str
    description: str
    args: list[str]  # the command that runs it in a process of its own
    # `scanner` arguments: set, the part is forked from the preloaded supervisor (zygote.py)
    # and runs the command in that child, instead of exec'ing `args`.
    cli: list[str] | None = None
    start_delay: float = 0.0  # seconds after the station's start (supervisor.LATER_PARTS_DELAY)
    # A queue's name: the part starts when jobs wait there and may exit 0 once idle, which is
    # no failure (on_demand.py). None: it runs all the time.
    on_demand: str | None = None
    limit: int = RESTART_LIMIT
    window: float = RESTART_WINDOW
    process: subprocess.Popen | Any | None = None  # or a zygote.ForkedProcess
    last_lines: list[str] = field(default_factory=list)
    failures: list[float] = field(default_factory=list)
    restart_at: float | None = None  # when a failed part is due to start again
    is_up: bool = False
    starts: int = 0

    def started(self, process: subprocess.Popen | Any | None) -> None:
        self.process, self.restart_at, self.is_up = process, None, True
        self.starts += 1

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def died(self) -> bool:
        """Up (not waiting for a restart) and its process has ended."""
        return self.is_up and self.process is not None and self.process.poll() is not None

    def failed(self, now: float) -> float | None:
        """Count a failure at `now`; the back-off before the restart, or None: give up."""
        self.is_up = False
        self.failures = [t for t in self.failures if now - t < self.window] + [now]
        if len(self.failures) >= self.limit:
            return None
        delay = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (len(self.failures) - 1))
        self.restart_at = now + delay
        return delay

    def due(self, now: float) -> bool:
        return self.restart_at is not None and now >= self.restart_at

    def signal_group(self, sig: int) -> None:
        """`sig` to the part's whole process group (its leader's pid names the group)."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

