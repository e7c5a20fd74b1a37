"""The all-in-one station behind `scanner run`: migrate the database, start a private Redis (when
none is configured), then `scanner web`, a scan worker (`hardware` queue), an uploads worker
(`uploads` queue: processing a big upload never delays a scan), a processing worker
(`processing` queue: reconstructions, at low CPU priority) and `scanner button`.

Like systemd's Restart=on-failure, for each part (see parts.py): a part that dies is restarted
after a back-off, with one line saying so; after RESTART_LIMIT failures within RESTART_WINDOW
seconds the station gives up and stops everything with a sentence naming the part. The
private Redis restarts the same way, from its own files (its data survives).

Nothing outlives the station:
- every part runs in its own process group (a Ctrl-C in the terminal reaches only this
  process, which stops things in order), and is signalled as a group;
- every part, the private Redis included, is started through parent_death.py: a `kill -9` of
  `scanner run` sends them SIGTERM;
- this process is a child subreaper: whatever a dead part leaves behind (an RQ work-horse is
  in a process group of its own) is re-parented here, told to stop, and killed after a grace
  time, before the part is started again.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from scanner_app.config import Settings
from scanner_app.runtime.output import LineSink
from scanner_app.runtime.parent_death import wrapped
from scanner_app.runtime.parts import RESTART_LIMIT, RESTART_WINDOW, Part, child_command
from scanner_app.runtime.redis_server import PrivateRedis, PrivateRedisError
from scanner_app.runtime.schema_state import is_up_to_date

# Stopping order: nothing new comes in, then the workers finish or are stopped.
STOP_ORDER = ("web", "button", "worker", "uploads", "processing")
PR_SET_CHILD_SUBREAPER = 36
# Workers wait this long for Redis at start instead of failing at once: while Redis is down
# (ours restarting, or an external one) a worker restart then counts one failure a minute,
# not one a second, and the station waits for Redis instead of giving up.
WAIT_FOR_REDIS = ("--wait-for-redis", "60")


def default_parts(host: str, port: int) -> list[Part]:
    return [
        Part("web", "the web server (scanner web)",
             child_command("web", "--host", host, "--port", str(port))),
        Part("worker", "the scan worker (scanner worker --queues hardware)",
             child_command("worker", "--queues", "hardware", *WAIT_FOR_REDIS)),
        Part("uploads", "the uploads worker (scanner worker --queues uploads)",
             child_command("worker", "--queues", "uploads", *WAIT_FOR_REDIS)),
        Part("button", "the start-button daemon (scanner button)", child_command("button")),
        # Models are built by a worker of their own that only takes CPU time nobody else
        # wants (SCHED_IDLE, nice 10 where that is missing): a reconstruction never slows
        # the web server or a scan.
        Part("processing", "the processing worker (scanner worker --queues processing)",
             child_command("worker", "--queues", "processing", "--nice", "10", "--idle",
                           *WAIT_FOR_REDIS)),
    ]


def become_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


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


class Supervisor:
    def __init__(self, settings: Settings, host: str = "127.0.0.1", port: int = 5000,
                 out: TextIO | None = None, stop_grace: float = 10.0,
                 parts: list[Part] | None = None, migrate: bool = True,
                 restart_limit: int = RESTART_LIMIT,
                 restart_window: float = RESTART_WINDOW, subreaper: bool = True) -> None:
        self.settings = settings
        self.sink = LineSink(out or sys.stdout)
        self.stop_grace = stop_grace
        self.parts = parts if parts is not None else default_parts(host, port)
        self.migrate = migrate
        self.subreaper = subreaper  # off in tests that run the supervisor inside pytest
        for part in self.parts:
            part.limit, part.window = restart_limit, restart_window
        self.redis: PrivateRedis | None = None
        self.redis_part = Part("redis", "the private Redis", [], limit=restart_limit,
                               window=restart_window)
        self._stop = threading.Event()

    # --- output ------------------------------------------------------------------------
    def say(self, text: str, prefix: str = "run") -> None:
        self.sink.say(text, prefix)

    def _forward(self, part: Part, process: subprocess.Popen) -> None:
        # Never stops reading until EOF: the sink drops lines rather than make us wait.
        for raw in process.stdout:
            line = raw.rstrip("\n")
            part.last_lines = (part.last_lines + [line])[-5:]
            self.say(line, part.name)

    # --- lifecycle ---------------------------------------------------------------------
    def request_stop(self, *_: object) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> Callable[[], None]:
        """SIGINT/SIGTERM/SIGHUP ask for a clean stop; returns a function restoring them."""
        previous = {sig: signal.signal(sig, self.request_stop)
                    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"  # children's lines show up as they are printed
        env["SCANNER_DATA_DIR"] = str(self.settings.data_dir)
        return env

    def migrate_database(self) -> bool:
        """`scanner db upgrade` before anything starts: a fresh data dir just works. A SQLite
        database already at the newest migration is seen as such without it (schema_state)."""
        if is_up_to_date(self.settings.database_url):
            self.say("database is up to date")
            return True
        done = subprocess.run(child_command("db", "upgrade"), env=self._env(),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace")
        if done.returncode == 0:
            self.say("database is up to date")
            return True
        # The migration's own output (a traceback, usually) goes to a file, not to people.
        where = "the output of 'scanner db upgrade'"
        details = self.settings.data_dir / "migration-error.log"
        try:
            details.write_text(done.stdout + done.stderr)
            where = str(details)
        except OSError:
            pass
        self.say("The database could not be migrated, so nothing was started. Check "
                 "SCANNER_DATABASE_URL and that the data dir is writable; the details are in "
                 f"{where}.")
        return False

    def start_part(self, part: Part) -> None:
        # Called from the main thread only: PR_SET_PDEATHSIG fires when the thread that
        # started the child ends, and the main thread lives as long as the station.
        process = subprocess.Popen(
            wrapped(part.args), env=self._env(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
            bufsize=1, process_group=0,
        )
        part.started(process)
        threading.Thread(target=self._forward, args=(part, process),
                         name=f"forward-{part.name}", daemon=True).start()
        self.say(f"started {part.description}, pid {process.pid}")

    def start_redis(self) -> None:
        self.redis = PrivateRedis(self.settings.data_dir, self.settings.redis_socket,
                                  wrap=wrapped)
        self.redis.start()
        self.redis_part.started(None)
        self.say(f"private Redis ready on {self.redis.socket_path}")

    def _known_pids(self) -> set[int]:
        pids = {p.process.pid for p in self.parts if p.process is not None}
        if self.redis is not None and self.redis.pid:
            pids.add(self.redis.pid)
        return pids

    def settle_orphans(self, grace: float) -> None:
        """Stop (SIGTERM, SIGKILL after `grace`) and reap whatever dead parts left behind. A
        scan's work-horse got SIGTERM from the kernel already and is stopping between
        frames; the grace lets it record the scan as interrupted and switch the rig off."""
        if not self.subreaper:
            # Only a subreaper's unknown children are orphans of its parts. Run inside another
            # program (tests run it inside pytest), its other children are that program's.
            return
        orphans = adopted_children(self._known_pids())
        if not orphans:
            return
        self.say(f"stopping {len(orphans)} process(es) left behind: {orphans}")
        for pid in orphans:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while orphans and time.monotonic() < deadline:
            orphans = [pid for pid in orphans if not _reaped(pid)]
            time.sleep(0.05)
        for pid in orphans:
            _signal(pid, signal.SIGKILL)
            _reaped(pid, block=True)

    def stop_parts(self) -> None:
        """SIGTERM to every part's group (in STOP_ORDER), a second SIGTERM halfway through the
        grace time (RQ and most servers read a second one as "now"), SIGKILL to whatever is
        left; then what they left behind."""
        order = {name: i for i, name in enumerate(STOP_ORDER)}
        alive = sorted((p for p in self.parts if p.running()),
                       key=lambda p: order.get(p.name, len(order)))
        for part in alive:
            part.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace
        second_at = time.monotonic() + self.stop_grace / 2
        sent_second = False
        while any(p.running() for p in alive):
            now = time.monotonic()
            if not sent_second and now >= second_at:
                for part in alive:
                    if part.running():
                        part.signal_group(signal.SIGTERM)
                sent_second = True
            if now >= deadline:
                for part in alive:
                    if part.running():
                        self.say(f"{part.description} did not stop in time; killing it")
                        part.signal_group(signal.SIGKILL)
                for part in alive:
                    part.process.wait(5)
                break
            time.sleep(0.05)
        for part in self.parts:
            if part.process is not None:
                part.signal_group(signal.SIGKILL)  # stragglers in the group (gunicorn's worker)
        self.settle_orphans(grace=min(self.stop_grace, 5.0))

    # --- supervision -------------------------------------------------------------------
    def _dead_part(self) -> Part | None:
        return next((p for p in self.parts if p.died()), None)

    def _handle_death(self, part: Part, now: float) -> bool:
        """A part died: clean up after it and plan its restart. False: give up."""
        code = part.process.returncode
        part.signal_group(signal.SIGKILL)  # anything left in its group
        self.settle_orphans(grace=self.stop_grace)
        delay = part.failed(now)
        if delay is None:
            self.say(f"{part.description} stopped {part.limit} times within "
                     f"{part.window:.0f} s (last exit code {code}); stopping the whole "
                     "station. Its last lines of output are above.")
            return False
        self.say(f"{part.description} stopped unexpectedly (exit code {code}); restarting it "
                 f"in {delay:.1f} s")
        return True

    def _handle_redis_death(self, now: float) -> bool:
        assert self.redis is not None
        self.redis.stop()  # reaps it and releases its lock, so it can be started again
        delay = self.redis_part.failed(now)
        if delay is None:
            self.say(f"the private Redis stopped {self.redis_part.limit} times within "
                     f"{self.redis_part.window:.0f} s; stopping the whole station. See "
                     f"{self.redis.log_path}.")
            return False
        self.say(f"the private Redis stopped unexpectedly; restarting it in {delay:.1f} s "
                 "(its data is kept)")
        return True

    def _restart_due(self, now: float) -> bool:
        """Start what is due again; False when a restart itself failed for good."""
        if self.redis is not None and self.redis_part.due(now):
            try:
                self.redis.start()
                self.redis_part.started(None)
                self.say("private Redis running again")
            except PrivateRedisError as exc:
                self.say(f"the private Redis could not be started again: {exc}")
                if self.redis_part.failed(now) is None:
                    return False
        for part in self.parts:
            if part.due(now):
                self.start_part(part)
        return True

    def supervise(self) -> int:
        while not self._stop.wait(0.2):
            now = time.monotonic()
            dead = self._dead_part()
            if dead is not None and not self._handle_death(dead, now):
                return 1
            if (self.redis is not None and self.redis_part.is_up and
                    not self.redis.running() and not self._handle_redis_death(now)):
                return 1
            if not self._restart_due(now):
                return 1
        return 0

    def run(self) -> int:
        """Start everything, supervise until a stop request or a part fails for good;
        return the exit code."""
        restore = self.install_signal_handlers()
        if self.subreaper:
            become_subreaper()
        exit_code = 1
        try:
            if self.migrate and not self.migrate_database():
                return 1
            if not self.settings.redis_url:
                self.start_redis()
            else:
                self.say("using the Redis named by SCANNER_REDIS_URL")
            if not self._stop.is_set():
                for part in self.parts:
                    self.start_part(part)
            exit_code = self.supervise()
            if exit_code == 0:
                then = ", then the private Redis" if self.redis is not None else ""
                self.say(f"stopping the web server, button daemon and workers{then}...")
        finally:
            self.stop_parts()
            if self.redis is not None:
                self.redis.stop()
            restore()
            if exit_code == 0:
                self.say("stopped.")
            self.sink.close()
        return exit_code


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _reaped(pid: int, block: bool = False) -> bool:
    """Reap `pid` (one of our adopted children); True once it is gone."""
    try:
        done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        return True
    return done == pid
