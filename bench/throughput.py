"""Benchmark: requests per second of the station's pages and API (issue 15).

The station is served as `scanner web` serves it (gunicorn, one HeadFirstThreadWorker with 8
threads, the app built in the worker) on a temp data dir with BENCH_THROUGHPUT_SESSIONS (10)
sessions, SQLite and its private Redis. BENCH_THROUGHPUT_CLIENTS (8) client threads, each on
its own kept-alive connection, send GET requests for BENCH_THROUGHPUT_SECONDS (5) per target.

Baseline, same run: a bare Flask app with one route answering a small JSON body, served by the
very same gunicorn set-up (web_server.StationServer, only `load()` differs).

Targets: `GET /api/v1/sessions` (X-Api-Key) / bare >= 0.5; dashboard `/` / bare >= 0.35, asked
with the X-Api-Key as before, and as a browser asks: signed in through the login form, with
the cookie it was given (the path people use; its cookie is read, its person looked up and a
CSRF token made from its session on every request).

Run alone: python -m bench throughput
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

CLIENTS = int(os.environ.get("BENCH_THROUGHPUT_CLIENTS", "8"))
SECONDS = float(os.environ.get("BENCH_THROUGHPUT_SECONDS", "5"))
SESSIONS = int(os.environ.get("BENCH_THROUGHPUT_SESSIONS", "10"))
# (label, path, how it authenticates) -> target
TARGETS = {("/api/v1/sessions", "/api/v1/sessions", "key"): 0.5, ("/", "/", "key"): 0.35,
           ("/ (login cookie)", "/", "cookie"): 0.35}
PASSWORD = "bench password 1"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def serve_bare(port: int) -> None:
    """Run in a subprocess: the bare app on the station's own gunicorn configuration."""
    from flask import Flask

    from scanner_app.runtime.web_server import StationServer, bind_listener

    class BareServer(StationServer):
        def load(self):
            app = Flask("bare")

            @app.get("/bare")
            def bare():
                return {"status": "ok"}

            return app

    listener = bind_listener("127.0.0.1", port)
    BareServer(listener.detach(), threads=8).run()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, path: str, headers: dict[str, str]) -> int | None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        conn.close()
        return response.status
    except OSError:
        return None


def wait_for(port: int, path: str, headers: dict[str, str], process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        if get(port, path, headers) == 200:
            return
        time.sleep(0.1)
    raise RuntimeError(f"no 200 from {path} within 90 s")


def load(port: int, path: str, headers: dict[str, str]) -> float:
    """Requests per second with 200 answers, CLIENTS kept-alive connections at once."""
    counts = [0] * CLIENTS
    errors: list[str] = []
    start = threading.Barrier(CLIENTS + 1)
    stop_at = [0.0]

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        start.wait()
        while time.monotonic() < stop_at[0]:
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            if response.status == 200:
                counts[index] += 1
            else:
                errors.append(f"HTTP {response.status}")
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.monotonic() + SECONDS
    start.wait()
    for thread in threads:
        thread.join()
    if errors:
        print(f"    {path}: {len(errors)} failed requests, e.g. {errors[0]}")
    return sum(counts) / SECONDS


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "scanner_app.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"scanner {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return done.stdout


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def seed(port: int, key: str) -> None:
    for index in range(SESSIONS):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/api/v1/sessions",
                     body=json.dumps({"name": f"Bench {index}", "make_current": False}),
                     headers={"X-Api-Key": key, "Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        conn.close()
        if response.status != 201:
            raise RuntimeError(f"creating a session answered {response.status}")


def _cookie_of(response: http.client.HTTPResponse) -> str | None:
    """The `session` cookie a response sets, as `session=...` for a Cookie header."""
    for name, value in response.getheaders():
        if name.lower() == "set-cookie" and value.startswith("session="):
            return value.split(";", 1)[0]
    return None


def sign_in(port: int) -> str:
    """Sign in through the login form as a browser does; the session cookie it is given,
    after the first dashboard (which adds its CSRF token to the session)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/login")
    response = conn.getresponse()
    page = response.read().decode()
    cookie = _cookie_of(response) or ""
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    body = urllib.parse.urlencode({"name": "bench", "password": PASSWORD, "csrf_token": token})
    conn.request("POST", "/login", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie,
        "Origin": f"http://127.0.0.1:{port}", "Referer": f"http://127.0.0.1:{port}/login"})
    response = conn.getresponse()
    response.read()
    if response.status != 302:
        raise RuntimeError(f"signing in answered {response.status}")
    cookie = _cookie_of(response) or cookie
    conn.request("GET", "/", headers={"Cookie": cookie, "Accept": "text/html"})
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"the dashboard answered {response.status} to a signed-in browser")
    conn.close()
    return _cookie_of(response) or cookie


def main(argv: list[str] | None = None) -> int:
    from scanner_app.runtime.redis_server import PrivateRedis

    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCANNER_")}
        env.update(SCANNER_DATA_DIR=str(data_dir), SCANNER_HAL="mock",
                   SCANNER_TIMEZONE="UTC", PYTHONPATH=str(PROJECT_ROOT))
        cli(env, "db", "upgrade")
        key = cli(env, "apikey", "create", "bench").strip().splitlines()[-1].split()[-1]
        done = subprocess.run([sys.executable, "-m", "scanner_app.cli", "user", "create",
                               "bench", "--admin", "--password-stdin"], env=env, text=True,
                              input=PASSWORD + "\n", capture_output=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"scanner user create failed: {done.stdout}{done.stderr}")
        redis = PrivateRedis(data_dir)
        redis.start()
        bare_port, port = free_port(), free_port()
        bare = subprocess.Popen(
            [sys.executable, "-c", f"from bench.throughput import serve_bare; "
                                   f"serve_bare({bare_port})"],
            cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        web = subprocess.Popen(
            [sys.executable, "-m", "scanner_app.cli", "web", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        headers = {"X-Api-Key": key, "Accept": "application/json"}
        try:
            wait_for(bare_port, "/bare", {}, bare)
            wait_for(port, "/api/v1/sessions", headers, web)
            seed(port, key)
            browser = {"Cookie": sign_in(port), "Accept": "text/html"}
            asked = {"key": headers, "cookie": browser}
            for _label, path, how in TARGETS:  # warm: templates compiled, connections pooled
                get(port, path, asked[how])
            results = {}
            for label, path, how in TARGETS:
                baseline = load(bare_port, "/bare", {})
                figure = load(port, path, {**headers, "Accept": "text/html"}
                              if (path, how) == ("/", "key") else asked[how])
                results[label] = (figure, baseline, TARGETS[label, path, how])
        finally:
            stop(web)
            stop(bare)
            redis.stop()
    ok = True
    print(f"requests/s, {CLIENTS} kept-alive clients, {SECONDS:.0f} s each, "
          f"{SESSIONS} sessions, {os.cpu_count()} CPU(s)")
    for label, (figure, baseline, target) in results.items():
        ratio = figure / baseline if baseline else 0.0
        met = ratio >= target
        ok &= met
        print(f"  GET {label:<18} {figure:8.0f} req/s   bare Flask route {baseline:8.0f} req/s   "
              f"ratio {ratio:5.2f}   target >= {target}   {'OK' if met else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
