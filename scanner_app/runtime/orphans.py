"""What `scanner run` does about processes its parts leave behind: as a child subreaper
(PR_SET_CHILD_SUBREAPER), orphans of a dead part (an RQ work-horse runs in a process group of its
own) are re-parented to it. These find them in /proc, signal and reap them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from scanner_app.runtime.parent_death import libc

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    return libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def adopted_children(known: set[int]) -> list[int]:
    """Processes whose parent is this one but that we did not start: orphans of a dead part."""
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in known:
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == me:  # fields: state, ppid, ...
            found.append(int(entry.name))
    return found


def send_signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def reaped(pid: int, block: bool = False) -> bool:
    """Reap `pid` (one of our adopted children); True once it is gone."""
    try:
        done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        return True
    return done == pid
