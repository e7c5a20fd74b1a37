"""`scanner web` as a real process (gunicorn, one gthread worker): a busy port and a broken
configuration are sentences; the app lives in the worker only and reconciles scans there; an
upload slower than the worker timeout is served; a client that stalls mid-body is cut off and
leaves nothing behind."""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from http.client import HTTPResponse
from pathlib import Path

import pytest

from scanner_app.models import Scan, Upload
from scanner_app.platform.extensions import db
from tests.conftest import build_app
from tests.runtime.procs import http, upgrade_and_key
from tests.support import Proc, cli, free_port, process_env, run_cli
from tests.uploads.helpers import image_bytes, multipart_body

BOUNDARY = "webServerTestBoundary"

# gunicorn with our StationServer, but short worker and client timeouts, so the tests below
# can outlast them in seconds.
SERVE_WITH_SHORT_TIMEOUTS = """
import sys
from scanner_app.runtime.web_server import bind_listener, serve
serve(bind_listener("127.0.0.1", int(sys.argv[1])), threads=2, ready_message="ready to serve",
      timeout=int(sys.argv[2]), client_idle_seconds=float(sys.argv[3]))
"""
WORKER_TIMEOUT = 2
CLIENT_IDLE = 3.0


def _open_files(pid: int) -> list[str]:
    found = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            found.append(os.readlink(fd))
        except OSError:
            continue
    return found


def _worker_pids(proc: Proc) -> list[int]:
    return [int(m.group(1)) for line in proc.lines
            if (m := re.search(r"Booting worker with pid: (\d+)", line))]


def test_busy_port_is_a_sentence_and_a_non_zero_exit(data_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli(data_dir, "web", "--port", str(port), timeout=30)
    assert done.returncode == 1, done.stdout + done.stderr
    assert (f"Cannot serve on 127.0.0.1:{port} (Address already in use). Is the station "
            "already running? Stop it, or pick another port with --port.") in done.stderr
    assert "Traceback" not in done.stderr
    assert "gunicorn" not in done.stdout + done.stderr  # stopped before gunicorn started


def test_broken_configuration_is_a_sentence(data_dir):
    done = run_cli(data_dir, "web", "--port", str(free_port()), timeout=30,
                   SCANNER_MAX_UPLOAD_MB="lots")
    assert done.returncode == 1
    assert "SCANNER_MAX_UPLOAD_MB='lots' is not a number" in done.stderr
    assert "Traceback" not in done.stderr


def test_app_lives_in_the_worker_which_reconciles_dead_scans_at_startup(data_dir):
    from scanner_app.platform.clock import utcnow
    from scanner_app.sessions.resolver import resolve_session

    app = build_app(data_dir)
    with app.app_context():
        session_id = resolve_session(None)
        scan = Scan(session_id=session_id, status="running", profile="quick", frames_planned=6,
                    frames_captured=2, source="api", heartbeat_at=utcnow() - timedelta(hours=1),
                    started_at=utcnow() - timedelta(hours=1))
        db.session.add(scan)
        db.session.commit()
        scan_id = scan.id
        db.engine.dispose()

    port = free_port()
    web = Proc(cli("web", "--port", str(port), "--threads", "2"), process_env(data_dir))
    try:
        web.wait_line(f"Scanning station web UI on http://127.0.0.1:{port}/")
        # Read straight from the database: API reads would reconcile on their own.
        with app.app_context():
            assert db.session.get(Scan, scan_id).status == "interrupted"
            db.engine.dispose()
        # No Redis and no worker here: /healthz says 503, with the database check ok.
        assert _database_check(port) == "ok"
        [worker] = _worker_pids(web)
        database = str(data_dir / "scanner.db")
        assert database in _open_files(worker)  # the worker's pool holds its connection...
        assert database not in _open_files(web.popen.pid)  # ...the master never opened it
    finally:
        web.kill()
    assert web.popen.returncode == 0, web.output


@pytest.fixture
def short_timeouts_server(data_dir) -> Iterator[tuple[int, str, Proc]]:
    key = upgrade_and_key(data_dir)
    port = free_port()
    server = Proc([sys.executable, "-c", SERVE_WITH_SHORT_TIMEOUTS, str(port),
                   str(WORKER_TIMEOUT), str(CLIENT_IDLE)], process_env(data_dir))
    try:
        server.wait_line("ready to serve")
        yield port, key, server
    finally:
        server.kill()


def _request_head(port: int, key: str, length: int) -> bytes:
    return (f"POST /api/v1/uploads HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Api-Key: {key}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def _read_response(sock: socket.socket) -> tuple[int, dict]:
    response = HTTPResponse(sock)
    response.begin()
    return response.status, json.loads(response.read())


def test_upload_slower_than_the_worker_timeout_is_served(short_timeouts_server, data_dir):
    port, key, server = short_timeouts_server
    body = multipart_body([("slow.jpg", image_bytes(seed=3) + b"\0" * 200_000)], BOUNDARY)
    pieces = 10
    step = len(body) // pieces + 1
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(_request_head(port, key, len(body)))
        for start in range(0, len(body), step):
            # Paced like a slow link: the request lasts 2.5 times the worker timeout, but no
            # pause comes near the client idle limit.
            time.sleep(WORKER_TIMEOUT * 2.5 / pieces)  # the client's pace, not a wait
            sock.sendall(body[start:start + step])
        status, answer = _read_response(sock)
    assert status == 201, answer
    assert answer["uploads"][0]["filename"] == "slow.jpg"
    assert "WORKER TIMEOUT" not in server.output
    assert len(_worker_pids(server)) == 1, server.output  # the same worker served it


def test_client_that_stalls_mid_body_is_cut_off_and_nothing_is_kept(short_timeouts_server,
                                                                   data_dir):
    port, key, server = short_timeouts_server
    body = multipart_body([("stall.jpg", image_bytes(seed=4) + b"\0" * 200_000)], BOUNDARY)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(_request_head(port, key, len(body)) + body[: len(body) // 2])
        # ...and nothing more, with the connection left open (a laptop gone from the Wi-Fi).
        status, answer = _read_response(sock)
    assert status == 400
    assert answer["error"]["code"] == "upload_interrupted"
    assert "nothing was kept" in answer["error"]["message"]
    assert list((data_dir / "incoming").iterdir()) == []
    app = build_app(data_dir)
    with app.app_context():
        assert db.session.query(Upload).count() == 0
        db.engine.dispose()
    # The thread is free again and the station answers.
    assert _database_check(port) == "ok"


def _database_check(port: int) -> str:
    status, _, body = http("GET", f"http://127.0.0.1:{port}/healthz")
    assert status in (200, 503), body
    return json.loads(body)["checks"]["database"]["status"]


def test_no_master_serves_from_the_one_process_and_stops_on_sigterm(data_dir):
    """`scanner web --no-master` (scanner run's web part): gunicorn's worker in the process
    itself, no child; the app is loaded there and SIGTERM ends it with exit code 0."""
    import signal

    from tests.runtime.procs import descendants

    upgrade_and_key(data_dir)
    port = free_port()
    web = Proc(cli("web", "--port", str(port), "--threads", "2", "--no-master"),
               process_env(data_dir))
    try:
        web.wait_line(f"Scanning station web UI on http://127.0.0.1:{port}/")
        assert _database_check(port) == "ok"
        assert descendants(web.popen.pid) == set()
        assert str(data_dir / "scanner.db") in _open_files(web.popen.pid)
        assert _worker_pids(web) == []  # no arbiter booting workers
        web.signal(signal.SIGTERM)
        assert web.wait(30) == 0, web.output
    finally:
        web.kill()
    assert "Traceback" not in web.output


SERVE_WITHOUT_MASTER = """
import sys
from gunicorn.workers.workertmp import WorkerTmp
if sys.argv[2] == "stuck":  # the loop beats once, then never again
    beat, beats = WorkerTmp.notify, []
    def notify(self):
        if not beats:
            beats.append(1)
            beat(self)
    WorkerTmp.notify = notify
from scanner_app.runtime.web_server import bind_listener, serve
serve(bind_listener("127.0.0.1", int(sys.argv[1])), threads=2, ready_message="ready to serve",
      timeout=2, master=False)
"""


def test_no_master_kills_a_worker_whose_loop_stops_beating(data_dir):
    """The master's WORKER TIMEOUT, kept without a master: a stuck loop is killed (scanner
    run then starts a new web part); a beating one is left alone."""
    servers = {kind: Proc([sys.executable, "-c", SERVE_WITHOUT_MASTER, str(free_port()), kind],
                          process_env(data_dir)) for kind in ("stuck", "beating")}
    try:
        for server in servers.values():
            server.wait_line("ready to serve")
        assert servers["stuck"].wait(30) == -9, servers["stuck"].output
        assert "WORKER TIMEOUT" in servers["stuck"].output
        assert servers["beating"].popen.poll() is None, servers["beating"].output
    finally:
        for server in servers.values():
            server.kill()
