"""The web server behind `scanner web`: gunicorn with ONE gthread worker process (our subclass,
web_worker.HeadFirstThreadWorker, which reads request heads in its event loop so that slow
clients cannot hold the request threads).

Why gunicorn's gthread worker: it is pure Python (runs the same on a Pi and a laptop) and hands
the request body to the app as a stream straight from the socket, so the upload intake writes
a 1 GiB upload to disk once, and enforces SCANNER_MAX_UPLOAD_MB itself with the station's JSON
error body (the server has no body limit of its own that would answer first in plain text).

- One worker process with N threads: the app keeps per-process state (the SQLAlchemy pool,
  Redis connections), and a Pi has little memory to spare for copies of it.
- The app is created IN the worker (no preload), so no database connection crosses the fork.
- We bind the listening socket ourselves before gunicorn starts and hand it over as
  `fd://N`: a busy port is then one clear sentence at once (gunicorn would retry five times
  and exit with a log line of its own).
- gthread's heartbeat comes from the worker's main loop, not from the request threads, so a
  long upload over a slow link does not count against `timeout`; a client that stops sending
  or reading altogether is cut off after CLIENT_IDLE_SECONDS instead of holding a thread.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn

from gunicorn.app.base import BaseApplication

DEFAULT_THREADS = 8
WORKER_CLASS = "scanner_app.runtime.web_worker.HeadFirstThreadWorker"
WORKER_CONNECTIONS = 1000
# Seconds the master waits for the worker's heartbeat before restarting it. The heartbeat comes
# from the worker's event loop every second whatever the request threads do, so this only
# catches a worker that is truly stuck; generous, because a Pi under load is slow.
WORKER_TIMEOUT_SECONDS = 120
# How long a stopping worker may finish requests in flight: `scanner run`'s Ctrl-C stays quick.
GRACEFUL_TIMEOUT_SECONDS = 5
# Idle kept-alive connections stay open this long (HTMX polls every second or two).
KEEPALIVE_SECONDS = 5
# A request whose client sends or reads nothing for this long is cut off (a laptop that left
# the Wi-Fi mid-upload): an upload ends as "interrupted", with nothing kept.
CLIENT_IDLE_SECONDS = 120

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port, set up as gunicorn sets up its own. Raises OSError
    (EADDRINUSE for a busy port)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(2048)
    except BaseException:
        listener.close()
        raise
    listener.set_inheritable(True)
    return listener


def with_client_idle_timeout(app: WSGIApp, seconds: float) -> WSGIApp:
    """Put a timeout on the client socket for the time of each request. A stalled read of the
    body then raises an OSError, which Werkzeug reports as a disconnect (the upload intake
    removes what it staged); a stalled write ends the response. gunicorn sets the socket back
    to blocking for the next request on a kept-alive connection."""

    def app_with_timeout(environ: dict, start_response: Callable) -> Iterable[bytes]:
        sock = environ.get("gunicorn.socket")
        if sock is not None and seconds:
            sock.settimeout(seconds)
        return app(environ, start_response)

    return app_with_timeout


def _worker_tmp_dir() -> str | None:
    # The heartbeat touches a file every second: keep it in memory, off the Pi's SD card.
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


class StationServer(BaseApplication):
    """gunicorn, configured in code (no config file, no GUNICORN_CMD_ARGS)."""

    def __init__(self, listener_fd: int, threads: int = DEFAULT_THREADS,
                 ready_message: str | None = None,
                 timeout: int = WORKER_TIMEOUT_SECONDS,
                 client_idle_seconds: float = CLIENT_IDLE_SECONDS) -> None:
        self.ready_message = ready_message
        self.client_idle_seconds = client_idle_seconds
        self.options: dict[str, Any] = {
            "bind": [f"fd://{listener_fd}"],
            "worker_class": WORKER_CLASS,
            # Connections one worker keeps open (waiting for a head, kept alive, or served).
            "worker_connections": WORKER_CONNECTIONS,
            "workers": 1,
            "threads": threads,
            "preload_app": False,
            "timeout": timeout,
            "graceful_timeout": GRACEFUL_TIMEOUT_SECONDS,
            "keepalive": KEEPALIVE_SECONDS,
            "accesslog": None,  # no line per request; errors still go to stderr
            "errorlog": "-",
            "loglevel": "info",
            "proc_name": "scanner-web",
            "worker_tmp_dir": _worker_tmp_dir(),
            # gunicorn's control socket is one path per user ($XDG_RUNTIME_DIR or ~/.gunicorn):
            # two stations (or test runs) on one machine would fight over it, and we do not use
            # it.
            "control_socket_disable": True,
            "post_worker_init": self._worker_ready,
        }
        super().__init__(prog="scanner web")

    def load_config(self) -> None:
        for key, value in self.options.items():
            if value is not None:
                self.cfg.set(key, value)

    def load(self) -> WSGIApp:
        """Runs in the worker process, after the fork."""
        from scanner_app import create_app
        from scanner_app.scans.service import reconcile_at_startup
        from scanner_app.sessions.day_end import complete_past_days_at_startup

        app = create_app()
        reconcile_at_startup(app)  # scans left 'running' by a worker that died
        # Days that ended while the station was off; in a thread, off the way to the first
        # answer (the start-up time is one of issue 15's figures).
        threading.Thread(target=complete_past_days_at_startup, args=(app,),
                         name="day-end", daemon=True).start()
        return with_client_idle_timeout(app, self.client_idle_seconds)

    def _worker_ready(self, _worker: object) -> None:
        # Printed by the worker once the app is loaded: from here on requests are answered.
        if self.ready_message:
            print(self.ready_message, flush=True)


    def run_without_master(self) -> None:
        """gunicorn's worker in this very process, as the arbiter runs it in the child it
        forks (Arbiter.spawn_worker), but with no arbiter: returns once the worker has
        stopped (SIGTERM: after finishing what is in flight, within graceful_timeout)."""
        from gunicorn import sock

        log = self.cfg.logger_class(self.cfg)
        listeners = sock.create_sockets(self.cfg, log)
        worker = self.cfg.worker_class(1, os.getppid(), listeners, self,
                                       self.cfg.timeout / 2.0, self.cfg, log)
        worker.pid = os.getpid()
        threading.Thread(target=_watchdog, args=(worker, self.cfg.timeout), daemon=True,
                         name="web-watchdog").start()
        try:
            worker.init_process()
        finally:
            worker.tmp.close()


def _watchdog(worker: Any, timeout: float) -> None:
    """The master's WORKER TIMEOUT without a master: the worker's loop beats (notify) every
    second whatever its request threads do; when it has not for `timeout` seconds, the loop
    is stuck and the process is killed, for its supervisor to start a new one."""
    while True:
        time.sleep(1.0)
        try:
            silent = time.monotonic() - worker.tmp.last_update()
        except (OSError, ValueError):
            return  # the worker has stopped and closed its heartbeat file
        if silent > timeout:
            worker.log.critical("WORKER TIMEOUT (pid:%s): no heartbeat for %.0f s; killing it",
                                worker.pid, silent)
            os.kill(os.getpid(), signal.SIGKILL)


def serve(listener: socket.socket, threads: int = DEFAULT_THREADS,
          ready_message: str | None = None, master: bool = True, **options: Any) -> NoReturn:
    """Serve the station on an already bound `listener` until stopped; exits the process with
    gunicorn's exit code (non-zero when the worker fails to boot).

    master=False (`scanner web --no-master`, what `scanner run` runs): no gunicorn master
    process, the worker runs here. A master restarts a worker that dies or stops beating for
    WORKER_TIMEOUT_SECONDS; here a thread kills the process when its loop stops beating
    (_watchdog) and `scanner run`'s supervisor restarts a web part that dies, and the
    master's ~25 MB of a 512 MB Pi are saved (issue 15)."""
    fd = listener.detach()  # gunicorn takes over the descriptor (and closes it when done)
    server = StationServer(fd, threads=threads, ready_message=ready_message, **options)
    if not master:
        server.run_without_master()
        sys.exit(0)
    server.run()
    sys.exit(0)  # run() itself ends in sys.exit; this is for the type checker's sake
