"""Process facts the station needs in more than one place."""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """Whether `pid` is a live process on this machine. A zombie (dead, not yet reaped by
    its parent) counts as gone: it will never do anything again."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, just someone else's
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True  # no /proc (not Linux): kill(0) said it exists
