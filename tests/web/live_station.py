"""A live station for the browser test: `scanner web` and a real `scanner worker` as
subprocesses, on a temp data dir with SQLite and a Redis database of our own."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import station_env


def _scanner_command() -> list[str]:
    script = Path(sys.executable).with_name("scanner")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from scanner_app.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveStation:
    def __init__(self, data_dir: Path, redis_url: str, **env: str):
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        base = {k: v for k, v in os.environ.items() if not k.startswith("SCANNER_")}
        self.env = {**base, **station_env(data_dir, SCANNER_REDIS_URL=redis_url, **env)}
        self.logs = data_dir.parent / "logs"
        self.logs.mkdir(exist_ok=True)
        self.processes: dict[str, subprocess.Popen] = {}

    def _spawn(self, name: str, *args: str) -> None:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(
            [*_scanner_command(), *args], env=self.env, stdout=log, stderr=subprocess.STDOUT,
            cwd=self.data_dir.parent,
        )

    def log_text(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def start(self, timeout: float = 30) -> None:
        subprocess.run([*_scanner_command(), "db", "upgrade"], env=self.env, check=True,
                       capture_output=True, cwd=self.data_dir.parent, timeout=60)
        self._spawn("web", "web", "--host", "127.0.0.1", "--port", str(self.port))
        self._spawn("worker", "worker")
        deadline = time.monotonic() + timeout
        while True:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"`scanner {name}` exited at start:\n{self.log_text(name)}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the web server did not answer:\n{self.log_text('web')}")
            time.sleep(0.1)

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    # --- the start-button daemon and the CLI (for tests of scans the page did not start) ---
    def run_cli(self, *args: str, input: str | None = None) -> str:
        """`scanner <args>` on this station, to its end; its stdout."""
        done = subprocess.run([*_scanner_command(), *args], env=self.env, input=input,
                              capture_output=True, text=True, cwd=self.data_dir.parent,
                              timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"`scanner {' '.join(args)}` failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def start_button(self, timeout: float = 30) -> None:
        """`scanner button` (mock button), ready once it wrote its pid to <data dir>/button.pid,
        which `scanner button --press` reads."""
        self._spawn("button", "button")
        pid_path = self.data_dir / "button.pid"
        deadline = time.monotonic() + timeout
        while True:
            proc = self.processes["button"]
            if proc.poll() is not None:
                raise RuntimeError(f"`scanner button` exited at start:\n{self.log_text('button')}")
            try:
                if int(pid_path.read_text().strip()) == proc.pid:
                    return
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the button daemon did not start:\n{self.log_text('button')}")
            time.sleep(0.05)

    def press_button(self) -> None:
        """Play the person at the turntable: one press of the running daemon's button."""
        self.run_cli("button", "--press")

    def create_api_key(self, name: str = "script") -> str:
        """A new X-Api-Key (the last word of `scanner apikey create`'s last line)."""
        return self.run_cli("apikey", "create", name).strip().splitlines()[-1].split()[-1]


def chromium_path() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium") or ""):
        if candidate and Path(candidate).exists():
            return candidate
    return None


SCREENS = Path(os.environ.get("SCANNER_SCREENSHOTS", "/tmp/screens"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def live_station(tmp_path_factory, redis_server: str, redis_db: int, name: str,
                 button: bool = False):
    """A live `scanner web` + `scanner worker` (+ button daemon) on its own Redis database;
    a generator for module-scoped fixtures."""
    import redis

    from tests.web.live_station import LiveStation

    url = redis_server.rsplit("/", 1)[0] + f"/{redis_db}"
    connection = redis.Redis.from_url(url)
    connection.flushdb()
    data_dir = tmp_path_factory.mktemp(name) / "data"
    data_dir.mkdir()
    live = LiveStation(data_dir, url, SCANNER_MOCK_CAPTURE_SECONDS="0.02",
                       SCANNER_MOCK_SECONDS_PER_REV="1")
    try:
        live.start()
        if button:
            live.start_button()
        yield live
    finally:
        live.stop()
        connection.flushdb()


def open_page(chromium):
    """A desktop-size page that records every request URL and every page error.
    Returns (context, page, requests, failures); close the context when done."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    failures: list[str] = []
    page.on("pageerror", lambda error: failures.append(str(error)))
    return context, page, requests, failures
