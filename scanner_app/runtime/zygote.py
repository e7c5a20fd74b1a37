"""The preloaded parent of `scanner run`'s parts (a "zygote", as Android's, or gunicorn's
--preload): the supervisor imports the station's common stack once (Flask, SQLAlchemy, RQ,
Redis, gunicorn and the app's own modules, blueprints included), then fork()s each part from
its main thread instead of exec'ing `python -m scanner_app.cli <part>`.

Why (issue 15): five children that each imported the stack cost 5 x 0.6-0.9 s of CPU on two
cores at start, and about 68 MB of private memory each once idle. Forked, they start with the
modules already in memory and share those pages with the parent and each other (copy on
write) until they write to them. gc.freeze() before every fork moves what exists into the
permanent generation, so a child's garbage collector never touches (and copies) those pages.

What must not cross the fork, and how each child starts clean (become_part):
- Threads: only the forking (main) thread exists in a child. The supervisor's forwarding and
  output threads may hold the locks of its io objects, so the child gets a new sys.stdin,
  sys.stdout and sys.stderr on fresh descriptors (/dev/null, and the write end of its own
  output pipe) and keeps the inherited ones referenced, never flushed or closed.
- Descriptors: every inherited one above stderr is closed (other parts' pipes, the private
  Redis's lock file), as exec with close_fds did.
- Database connections and Redis connections: the parent opens none. The database is
  prepared in a forked child (migrate_entry), Redis's readiness ping closes its client. The
  web server's app is created in gunicorn's worker; the workers and the button daemon take
  one app built here before their fork (prepare_pageless_app: it shares about 7 MB more per
  part than each building its own), whose engine pool each of them makes anew.
- Signals and exit: the supervisor's handlers are reset to Python's defaults, atexit handlers
  are dropped (the parent's would stop the private Redis), and the child leaves with
  os._exit() so nothing of the parent's is flushed or run twice.
- Process group, parent-death signal and name: as `scanner run` gave its exec'd parts
  (parent_death.py), plus a /proc/<pid>/comm of `scanner-<part>`.
(Python 3.12 warns, hidden by default, about fork() in a process with threads: the child here
relies on nothing another thread held.)

Numpy and OpenCV are not preloaded: only the scan worker uses them, and loaded in the parent
they would cost every part their pages' share and the parent's start time for nothing.
"""

from __future__ import annotations

import atexit
import ctypes
import gc
import importlib
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TextIO

from scanner_app.runtime.parent_death import die_with_parent, libc

if TYPE_CHECKING:
    from flask import Flask

    from scanner_app.config import Settings

PR_SET_NAME = 15  # from <linux/prctl.h>

# What every part (or the app each one builds) imports. The app's blueprints and its request
# machinery come through scanner_app.blueprints (register_blueprints on a bare app).
PRELOAD = (
    "flask", "flask.cli", "flask_sqlalchemy", "sqlalchemy", "sqlalchemy.orm", "jinja2",
    "redis", "rq", "rq.worker", "gunicorn.app.base", "gunicorn.arbiter",
    "gunicorn.workers.gthread", "scanner_app.config", "scanner_app.models",
    "scanner_app.platform.extensions", "scanner_app.accounts.auth", "scanner_app.platform.errors",
    "scanner_app.platform.web.converters", "scanner_app.platform.web.security",
    "scanner_app.blueprints", "scanner_app.cli.accounts", "scanner_app.cli.button",
    "scanner_app.cli.doctor", "scanner_app.cli.hal", "scanner_app.cli.web",
    "scanner_app.cli.worker", "scanner_app.runtime.web_server", "scanner_app.runtime.web_worker",
    "scanner_app.runtime.worker", "scanner_app.runtime.button_daemon",
    "scanner_app.scans.service", "sqlite3", "flask_sqlalchemy.cli",
)

# The streams a child inherited: referenced forever, so they are never flushed or closed in it.
_INHERITED_STREAMS: list[TextIO] = []
# The `scanner` commands whose processes serve no pages (cli.NO_PAGES): they take the app below.
PAGELESS_COMMANDS = ("worker", "button")
# The app the parts that serve no pages share (prepare_pageless_app), and the log handlers its
# create_app() set up, which each child makes again on its own stderr.
_PAGELESS: dict[str, Any] = {}


# What preparing the database needs (migrate_entry): loaded first, so the database is
# prepared in a forked child while the parent loads the rest.
DATABASE_MODULES = ("scanner_app.models", "scanner_app.runtime.schema_state",
                    "scanner_app.platform.database")


def preload_modules(modules: tuple[str, ...]) -> float:
    """Import `modules` with the garbage collector off; the seconds it took."""
    started = time.monotonic()
    # No collection in the parent from here until its parts are forked (the supervisor turns
    # it back on): a collection frees objects all over the heap, and the children's first
    # allocations would fill those holes, copying page after page (Python's gc.freeze docs).
    gc.disable()
    for name in modules:
        importlib.import_module(name)
    return time.monotonic() - started


def preload(modules: tuple[str, ...] = PRELOAD) -> float:
    """Import what the parts share, then freeze it for the garbage collector; the seconds it
    took. Builds no app and opens no connection."""
    started = time.monotonic()
    preload_modules(modules)
    from flask import Flask

    from scanner_app.blueprints import register_blueprints

    # Registered on a bare app that is thrown away: imports every view module the web
    # app registers, without the settings, engine or data dir of a real one.
    bare = Flask("scanner_app.preload")
    bare.config["SCANNER_RQ_DASHBOARD"] = False  # rq-dashboard is the web worker's alone
    register_blueprints(bare)
    # The ORM's mappers are configured on first use; done here, once, instead of in every part
    # (about 2 MB of copied pages less per part).
    from sqlalchemy.orm import configure_mappers

    configure_mappers()
    if sys.platform.startswith("linux"):
        libc()  # looked up here, not in each child
    gc.freeze()
    return time.monotonic() - started


def prepare_pageless_app(settings: Settings) -> None:
    """Build, in the parent, the app of the parts that serve no pages (the workers and the
    button daemon; the web server builds its own in gunicorn's worker). A child that uses it
    skips create_app() and, above all, shares the app's objects instead of copying the pages
    that building them touches: about 7 MB less per part (bench footprint). create_app()
    opens no connection; each child disposes the engine's (empty) pool all the same.
    Tried once; if it fails, each part builds its own app and says what is wrong."""
    import logging

    from scanner_app import create_app

    if "tried" in _PAGELESS:
        return
    _PAGELESS["tried"] = True
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        _PAGELESS["app"] = create_app(settings, overrides={"SCANNER_RQ_DASHBOARD": False})
    except Exception:  # noqa: BLE001 - a sentence from each part's own create_app instead
        return
    # Its log handlers would write to this process's stderr: taken off here, made again in
    # each child that uses the app (pageless_app).
    _PAGELESS["handlers"] = [h for h in root.handlers if h not in before]
    _PAGELESS["level"] = root.level
    for handler in _PAGELESS["handlers"]:
        root.removeHandler(handler)


def pageless_app() -> Flask | None:
    """In a forked part: the app prepared by its parent, with fresh database pools and its
    log handlers on this process's stderr; None when there is none (not forked by scanner
    run)."""
    import logging

    app = _PAGELESS.pop("app", None)
    if app is None:
        return None
    from scanner_app.platform.extensions import db

    with app.app_context():
        for engine in db.engines.values():
            engine.dispose(close=False)  # nothing to close: the pool is made anew here
    root = logging.getLogger()
    if not root.handlers:
        for old in _PAGELESS.get("handlers", []):
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(old.formatter)
            handler.setLevel(old.level)
            root.addHandler(handler)
        root.setLevel(_PAGELESS.get("level", root.level))
    return app


class ForkedProcess:
    """A forked part seen as subprocess.Popen is (pid, poll, wait, returncode, stdout)."""

    def __init__(self, pid: int, stdout: TextIO) -> None:
        self.pid = pid
        self.stdout = stdout
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: it is gone, its status unknown
                self.returncode = -1
                return self.returncode
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"forked part {self.pid}", timeout or 0)
            time.sleep(0.02)
        return self.returncode


def fork_part(name: str, entry: Callable[[], int], environ: dict[str, str]) -> ForkedProcess:
    """Fork a child that becomes part `name` and runs `entry()` (its exit code); its output
    (stdout and stderr) comes out of the returned process's stdout. Call from the main
    thread: the child's parent-death signal is tied to the thread that forked it."""
    parent = os.getpid()
    read_fd, write_fd = os.pipe()
    gc.freeze()  # whatever the parent made since the last fork: shared, never collected there
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            os.close(read_fd)
            become_part(name, write_fd, parent, environ)
            code = entry()
        except SystemExit as exc:
            code = exit_code(exc)
        except BaseException:  # noqa: BLE001 - the child's last words, then out
            traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            os._exit(code)
    os.close(write_fd)
    try:
        os.setpgid(pid, pid)  # also done by the child: whichever comes first, no signal races
    except (PermissionError, ProcessLookupError):
        pass
    out = open(read_fd, encoding="utf-8", errors="replace")  # noqa: SIM115 - the part's
    return ForkedProcess(pid, out)


def become_part(name: str, out_fd: int, parent: int, environ: dict[str, str]) -> None:
    """In a just-forked child: the clean start a fresh `python -m scanner_app.cli` had."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:
        pass
    gc.enable()  # off in the parent while it forks; what it made is frozen (fork_part)
    atexit._clear()  # the parent's (PrivateRedis.stop among them) are not this process's
    os.setpgid(0, 0)
    if not die_with_parent(parent):
        os._exit(1)  # the supervisor is gone already
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    close_inherited_descriptors()
    _INHERITED_STREAMS.extend(s for s in (sys.stdin, sys.stdout, sys.stderr, sys.__stdin__,
                                          sys.__stdout__, sys.__stderr__) if s is not None)
    sys.stdin = sys.__stdin__ = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stdout = sys.__stdout__ = _line_stream(1)
    sys.stderr = sys.__stderr__ = _line_stream(2)
    os.environ.update(environ)
    _set_name(f"scanner-{name}")


def close_inherited_descriptors() -> None:
    for fd in _open_descriptors():
        if fd > 2:
            try:
                os.close(fd)
            except OSError:
                pass


def _open_descriptors() -> Iterator[int]:
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        names = [str(fd) for fd in range(3, os.sysconf("SC_OPEN_MAX"))]
    return (int(n) for n in names)


def _line_stream(fd: int) -> TextIO:
    # As PYTHONUNBUFFERED gave the exec'd parts: each line reaches the supervisor at once.
    stream = open(fd, "w", buffering=1, encoding="utf-8", errors="backslashreplace",  # noqa: SIM115
                  closefd=False)
    stream.reconfigure(write_through=True)
    return stream


def _set_name(name: str) -> None:
    if sys.platform.startswith("linux"):
        libc().prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)


def exit_code(exc: SystemExit) -> int:
    """What the interpreter would exit with for `exc` (a message is printed, and is 1)."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr)
    return 1


def cli_entry(args: list[str]) -> Callable[[], int]:
    """A part's entry: the `scanner` command with `args`, run in the forked process."""

    def run() -> int:
        from scanner_app.cli import main

        sys.argv = ["scanner", *args]
        main()
        return 0

    return run


def migrate_entry(settings: Settings) -> Callable[[], int]:
    """Prepare the station's database in a forked child (no connection is ever opened in the
    preloaded parent): a new, empty database gets the models' schema and alembic's head in
    one transaction (schema_state.prepare_database); any other is migrated by alembic, as
    `scanner db upgrade` does."""

    def run() -> int:
        from scanner_app.runtime.schema_state import NEEDS_MIGRATION, prepare_database

        if prepare_database(settings) != NEEDS_MIGRATION:
            return 0
        return cli_entry(["db", "upgrade"])()

    return run
