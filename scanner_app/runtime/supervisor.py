"""The all-in-one station behind `scanner run`: start a private Redis (when none is configured),
preload the station's modules, prepare the database, then `scanner web`, a scan worker
(`hardware` queue), an uploads worker (`uploads` queue: processing a big upload never delays a
scan), `scanner button` and, when a model is queued, a processing worker (`processing` queue:
reconstructions, at low CPU priority; it exits once idle: on_demand.py).

The parts are forked from this process once it has imported what they share (zygote.py):
they start fast and share those pages. Parts given as plain commands (no `Part.cli`) are exec'd.

Like systemd's Restart=on-failure, for each part (see parts.py): a part that dies is restarted
after a back-off, with one line saying so; after RESTART_LIMIT failures within RESTART_WINDOW
seconds the station gives up and stops everything with a sentence naming the part. The
private Redis restarts the same way, from its own files (its data survives).

Nothing outlives the station:
- every part runs in its own process group (a Ctrl-C in the terminal reaches only this
  process, which stops things in order), and is signalled as a group;
- every part dies with this process (parent_death.py: a forked part arms it right after the
  fork, an exec'd one and the private Redis are started through it): a `kill -9` of
  `scanner run` sends them SIGTERM;
- this process is a child subreaper: whatever a dead part leaves behind (an RQ work-horse has
  its own process group) is re-parented here, stopped, killed after a grace time if need be.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from scanner_app.config import Settings
from scanner_app.runtime.on_demand import IDLE_EXIT_SECONDS, ON_DEMAND_ENV, QueueWatch
from scanner_app.runtime.orphans import adopted_children, become_subreaper, reaped, send_signal
from scanner_app.runtime.output import LineSink
from scanner_app.runtime.parent_death import wrapped
from scanner_app.runtime.parts import RESTART_LIMIT, RESTART_WINDOW, Part, child_command
from scanner_app.runtime.redis_server import PrivateRedis, PrivateRedisError
from scanner_app.runtime.schema_state import is_up_to_date
from scanner_app.runtime.zygote import (
    DATABASE_MODULES,
    PAGELESS_COMMANDS,
    ForkedProcess,
    cli_entry,
    fork_part,
    migrate_entry,
    preload,
    preload_modules,
    prepare_pageless_app,
)

# Stopping order: nothing new comes in, then the workers finish or are stopped.
STOP_ORDER = ("web", "button", "worker", "uploads", "processing")
# Workers wait this long for Redis at start instead of failing at once: while Redis is down
# (ours restarting, or an external one) a worker restart then counts one failure a minute,
# not one a second, and the station waits for Redis instead of giving up.
WAIT_FOR_REDIS = ("--wait-for-redis", "60")
# The button daemon starts this long after the others (and the processing worker's queue is
# first looked at then): the web server and the scan and uploads workers get the two cores.
LATER_PARTS_DELAY = 1.0


def _forked(name: str, description: str, *args: str, later: bool = False,
            on_demand: str | None = None) -> Part:
    return Part(name, description, child_command(*args), cli=list(args),
                start_delay=LATER_PARTS_DELAY if later else 0.0, on_demand=on_demand)


def default_parts(host: str, port: int) -> list[Part]:
    # In this order: /healthz needs the web server and the scan and uploads workers first.
    return [
        _forked("web", "the web server (scanner web)", "web", "--host", host, "--port", str(port),
                "--no-master"),  # no gunicorn master: restarted from here (web_server.serve)
        _forked("worker", "the scan worker (scanner worker --queues hardware)",
                "worker", "--queues", "hardware", *WAIT_FOR_REDIS),
        _forked("uploads", "the uploads worker (scanner worker --queues uploads)",
                "worker", "--queues", "uploads", *WAIT_FOR_REDIS),
        _forked("button", "the start-button daemon (scanner button)", "button", later=True),
        # Models are built by a worker of their own that only takes CPU time nobody else
        # wants (SCHED_IDLE, nice 10 where that is missing): a reconstruction never slows
        # the web server or a scan. It runs only while models are queued (on_demand.py).
        _forked("processing", "the processing worker (scanner worker --queues processing)",
                "worker", "--queues", "processing", "--nice", "10", "--idle",
                "--max-idle", str(IDLE_EXIT_SECONDS), *WAIT_FOR_REDIS, on_demand="processing"),
    ]


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
        self.preloaded = False
        self.watches: dict[str, QueueWatch] = {}  # per on-demand part, made at start (run)
        self._preload_seconds = 0.0
        self._migration_started = 0.0
        self._stop = threading.Event()

    # --- output ------------------------------------------------------------------------
    def say(self, text: str, prefix: str = "run") -> None:
        self.sink.say(text, prefix)

    def _forward(self, part: Part, process: subprocess.Popen | ForkedProcess) -> None:
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

    def _env_changes(self) -> dict[str, str]:
        changes = {"PYTHONUNBUFFERED": "1",  # children's lines show up as they are printed
                   "SCANNER_DATA_DIR": str(self.settings.data_dir)}
        if any(p.on_demand for p in self.parts):  # the station page says so (health.py)
            changes[ON_DEMAND_ENV] = "1"
        return changes

    def _forks_parts(self) -> bool:
        return any(p.cli is not None for p in self.parts)

    def preload(self) -> None:
        """Import what the forked parts share, once (zygote.py), if any part is forked."""
        if self.preloaded or not self._forks_parts():
            return
        seconds = self._preload_seconds + preload()
        self.preloaded = True
        self.say(f"loaded the station's modules in {seconds:.2f} s")

    def migrate_database(self) -> bool:
        """Prepare the database before anything starts: a fresh data dir just works. A SQLite
        database already at the newest migration is seen as such at once (schema_state);
        otherwise a forked child creates a new database's schema or migrates an existing one
        (zygote.migrate_entry), so this process never holds a database connection."""
        return self.finish_migration(self.start_migration())

    def start_migration(self) -> ForkedProcess | None:
        """Fork the child that prepares the database (None: up to date already). With forked
        parts, what it needs is loaded first, and the rest loads while it works."""
        if is_up_to_date(self.settings.database_url):
            return None
        if not self.preloaded and self._forks_parts():
            self._preload_seconds += preload_modules(DATABASE_MODULES)
        self._migration_started = time.monotonic()
        return fork_part("migrate", migrate_entry(self.settings), self._env_changes())

    def finish_migration(self, child: ForkedProcess | None) -> bool:
        if child is None:
            self.say("database is up to date")
            return True
        output = child.stdout.read()
        child.stdout.close()
        if child.wait() == 0:
            took = time.monotonic() - self._migration_started
            self.say(f"database is up to date (prepared in {took:.2f} s)")
            return True
        # The migration's own output (a traceback, usually) goes to a file, not to people.
        where = "the output of 'scanner db upgrade'"
        details = self.settings.data_dir / "migration-error.log"
        try:
            details.write_text(output)
            where = str(details)
        except OSError:
            pass
        self.say("The database could not be migrated, so nothing was started. Check "
                 "SCANNER_DATABASE_URL and that the data dir is writable; the details are in "
                 f"{where}.")
        return False

    def start_part(self, part: Part) -> None:
        # From the main thread only: PR_SET_PDEATHSIG fires when the forking thread ends.
        if part.cli is not None and self.preloaded:
            if part.cli[0] in PAGELESS_COMMANDS:  # their app, once, after the web's fork
                prepare_pageless_app(self.settings)
            process = fork_part(part.name, cli_entry(part.cli), self._env_changes())
        else:
            process = subprocess.Popen(
                wrapped(part.args), env={**os.environ, **self._env_changes()},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                errors="replace", bufsize=1, process_group=0,
            )
        part.started(process)
        threading.Thread(target=self._forward, args=(part, process),
                         name=f"forward-{part.name}", daemon=True).start()
        self.say(f"started {part.description}, pid {process.pid}")

    def launch_redis(self) -> None:
        """Start the private Redis; wait_for_redis() waits for it (it boots meanwhile)."""
        self.redis = PrivateRedis(self.settings.data_dir, self.settings.redis_socket,
                                  wrap=wrapped)
        self.redis.launch()

    def wait_for_redis(self) -> None:
        assert self.redis is not None
        self.redis.wait_until_ready()
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
            send_signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while orphans and time.monotonic() < deadline:
            orphans = [pid for pid in orphans if not reaped(pid)]
            time.sleep(0.05)
        for pid in orphans:
            send_signal(pid, signal.SIGKILL)
            reaped(pid, block=True)

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
        if part.on_demand and code == 0:  # idle and done: no failure, started again on demand
            part.is_up = False
            self.say(f"{part.description} is idle and has stopped; it starts again when a "
                     f"job is queued on {part.on_demand}")
            return True
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
            elif (part.restart_at is None and not part.running() and part.name in self.watches
                    and self.watches[part.name].jobs_waiting(now)):  # on demand (on_demand.py)
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
            if not self.settings.redis_url:
                self.launch_redis()  # it boots while the modules load
            migration = self.start_migration() if self.migrate else None
            self.preload()
            if self.migrate and not self.finish_migration(migration):
                return 1
            if self.redis is not None:
                self.wait_for_redis()
            else:
                self.say("using the Redis named by SCANNER_REDIS_URL")
            if not self._stop.is_set():
                for part in self.parts:
                    if part.on_demand:  # first asked once the others are up
                        self.watches[part.name] = QueueWatch(
                            self.settings, part.on_demand, time.monotonic() + LATER_PARTS_DELAY)
                    elif part.start_delay:
                        part.restart_at = time.monotonic() + part.start_delay
                    else:
                        self.start_part(part)
            gc.enable()  # off since preload(), so the parts share the most (zygote.py)
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
