"""Dying with the parent: Linux's PR_SET_PDEATHSIG, so no part of the station (and above all
no process driving the rig) outlives the process that supervises it.

Two uses:
- `die_with_parent(expected_parent)` in a process that is already running (the RQ work-horse,
  right after fork).
- `python -S .../parent_death.py PARENT_PID SIGNAL -- program args...` (`wrapped()`): sets the
  signal and then exec()s the program, which keeps the setting (the same pid, and the signal
  survives execve for ordinary binaries). `scanner run` starts its parts this way, the private
  redis-server included, so a `kill -9` of `scanner run` stops them all.

The race: a parent that dies between fork() and prctl() is never signalled; so after setting
it we compare getppid() with the parent we expected and act as if the signal had come.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


@functools.cache
def libc() -> ctypes.CDLL:
    """The C library, looked up once (find_library runs ldconfig): a preloaded parent's
    forked children use its handle."""
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _prctl_set_pdeathsig(sig: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    return libc().prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0


def die_with_parent(expected_parent: int, sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send `sig` to this process when its parent dies. Returns False when
    the parent is already gone (or was never `expected_parent`), after sending `sig` to
    ourselves, exactly as the kernel would have. Returns True when armed; on a system
    without prctl it returns True without arming anything (tests on other systems)."""
    armed = _prctl_set_pdeathsig(sig)
    if os.getppid() != expected_parent:
        os.kill(os.getpid(), sig)
        return False
    return armed or not sys.platform.startswith("linux")


def wrapped(command: list[str], sig: int = signal.SIGTERM) -> list[str]:
    """`command`, started through this module so that it dies with the calling process."""
    # Run as a plain script without site-packages: importing the scanner_app package (the
    # app factory, Flask, SQLAlchemy) would cost a second on a Pi for a few lines of ctypes.
    return [sys.executable, "-S", os.path.abspath(__file__), str(os.getpid()), str(int(sig)),
            "--", *command]


def main(argv: list[str]) -> None:
    parent, sig, separator, *command = argv
    if separator != "--" or not command:
        sys.exit("usage: parent_death.py PARENT_PID SIGNAL -- COMMAND...")
    if not die_with_parent(int(parent), int(sig)):
        sys.exit(1)  # the signal we sent ourselves may be handled or ignored: leave anyway
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
