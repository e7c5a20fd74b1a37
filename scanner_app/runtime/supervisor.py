"""The all-in-one station behind `scanner run`: private Redis (when none is configured), then
`scanner web`, `scanner worker` and `scanner button` as child processes.

Each child runs in its own process group, so a Ctrl-C in the terminal reaches only this
supervisor, which then stops things in order: web and button first (no new work comes in),
the worker, and Redis last (the others still need it while they stop).

A child that dies on its own stops the whole station with exit code 1 and a sentence naming
the part. We do not restart it: a part that crashes once usually crashes again (port in use,
broken config, database unreachable), and a restart loop would hide that. On a Pi, systemd
restarts the units (or `scanner run`) with a back-off, which is the right place for that.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from scanner_app.config import Settings
from scanner_app.runtime.redis_server import PrivateRedis, start_private_redis

# What each part is called in sentences and in the output prefix.
PARTS = {
    "web": "the web server (scanner web)",
    "worker": "the scan worker (scanner worker)",
    "button": "the start-button daemon (scanner button)",
}
# Stopping order: nothing new comes in, then the worker finishes or is stopped.
STOP_ORDER = ("web", "button", "worker")


@dataclass
class Child:
    name: str
    args: list[str]
    process: subprocess.Popen | None = None
    reader: threading.Thread | None = None
    expected_exit: bool = False
    last_lines: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        return PARTS.get(self.name, self.name)


def child_command(*args: str) -> list[str]:
    """The `scanner` CLI of this very installation, whatever PATH says."""
    return [sys.executable, "-m", "scanner_app.cli", *args]


class Supervisor:
    def __init__(self, settings: Settings, host: str = "127.0.0.1", port: int = 5000,
                 out: TextIO | None = None, stop_grace: float = 10.0) -> None:
        self.settings = settings
        self.out = out or sys.stdout
        self.stop_grace = stop_grace
        self.children = [
            Child("web", child_command("web", "--host", host, "--port", str(port))),
            Child("worker", child_command("worker")),
            Child("button", child_command("button")),
        ]
        self.redis: PrivateRedis | None = None
        self._stop = threading.Event()
        self._out_lock = threading.Lock()

    # --- output ------------------------------------------------------------------------
    def say(self, text: str, prefix: str = "run") -> None:
        with self._out_lock:
            self.out.write(f"{prefix:>6} | {text}\n")
            self.out.flush()

    def _forward(self, child: Child) -> None:
        assert child.process is not None and child.process.stdout is not None
        for raw in child.process.stdout:
            line = raw.rstrip("\n")
            child.last_lines = (child.last_lines + [line])[-5:]
            self.say(line, child.name)

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

    def start_children(self) -> None:
        env = self._env()
        for child in self.children:
            child.process = subprocess.Popen(
                child.args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1,
                process_group=0,  # the terminal's Ctrl-C goes to us only; we stop them in order
            )
            child.reader = threading.Thread(target=self._forward, args=(child,),
                                            name=f"forward-{child.name}", daemon=True)
            child.reader.start()
            self.say(f"started {child.description}, pid {child.process.pid}")

    def dead_child(self) -> Child | None:
        for child in self.children:
            if child.process is not None and child.process.poll() is not None:
                return child
        return None

    def _signal_group(self, child: Child, sig: int) -> None:
        try:
            os.killpg(child.process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop_children(self) -> None:
        """SIGTERM to every part (in STOP_ORDER), a second SIGTERM halfway through the grace
        time (RQ and most servers read a second one as "now"), SIGKILL to whatever is left."""
        alive = [c for name in STOP_ORDER for c in self.children
                 if c.name == name and c.process is not None and c.process.poll() is None]
        for child in alive:
            child.expected_exit = True
            self._signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace
        second_at = time.monotonic() + self.stop_grace / 2
        sent_second = False
        while any(c.process.poll() is None for c in alive):
            now = time.monotonic()
            if not sent_second and now >= second_at:
                for child in alive:
                    if child.process.poll() is None:
                        self._signal_group(child, signal.SIGTERM)
                sent_second = True
            if now >= deadline:
                for child in alive:
                    if child.process.poll() is None:
                        self.say(f"{child.description} did not stop in time; killing it")
                        self._signal_group(child, signal.SIGKILL)
                for child in alive:
                    child.process.wait(5)
                break
            time.sleep(0.05)
        for child in self.children:
            if child.reader is not None:
                child.reader.join(2)

    def run(self) -> int:
        """Start everything, wait for a stop request or a dead part; return the exit code."""
        restore = self.install_signal_handlers()
        exit_code = 0
        try:
            if not self.settings.redis_url:
                self.redis = start_private_redis(self.settings)
                self.say(f"private Redis ready on {self.redis.socket_path}")
            else:
                self.say("using the Redis named by SCANNER_REDIS_URL")
            if not self._stop.is_set():
                self.start_children()
            while not self._stop.wait(0.2):
                dead = self.dead_child()
                if dead is not None:
                    self.say(
                        f"{dead.description} stopped unexpectedly (exit code "
                        f"{dead.process.returncode}); stopping the whole station. Its last "
                        "lines of output are above."
                    )
                    exit_code = 1
                    break
                if self.redis is not None and not self.redis.running():
                    self.say("the private Redis stopped unexpectedly; stopping the whole "
                             f"station. See {self.redis.log_path}.")
                    exit_code = 1
                    break
            if exit_code == 0:
                then = ", then the private Redis" if self.redis is not None else ""
                self.say(f"stopping the web server, button daemon and worker{then}...")
        finally:
            self.stop_children()
            if self.redis is not None:
                self.redis.stop()
            restore()
        if exit_code == 0:
            self.say("stopped.")
        return exit_code
