"""Issue 10, finding 8: deletes and merges racing new work, against a live station (`scanner
web` with 8 threads and a `scanner worker`), clients as threads on real sockets, a bounded
number of rounds, on SQLite and PostgreSQL. Every answer is a clean 2xx, 404 or 409 with the
station's error body (never a 500), and a deleted session's directory is never made again."""

from __future__ import annotations

import http.client
import json
import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from scanner_app.models import ScanSession
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import StorageManager
from tests.conftest import build_app
from tests.support import Proc, cli, free_port, process_env, run_cli, wait_until
from tests.uploads.helpers import image_bytes, multipart_body
from tests.uploads.test_live_server import BOUNDARY, LiveStation, house_error, stop_station

ROUNDS = 6
UPLOADS_PER_ROUND = 6


def _call(station: LiveStation, method: str, path: str, body: bytes | None = None,
          content_type: str = "application/json") -> tuple[int, dict]:
    conn = http.client.HTTPConnection(station.host, station.port, timeout=60)
    try:
        conn.request(method, path, body=body,
                     headers={"X-Api-Key": station.key, "Content-Type": content_type})
        response = conn.getresponse()
        raw = response.read()
        return response.status, (json.loads(raw) if raw.strip() else {})
    finally:
        conn.close()


def start_station(data_dir, database_url: str, redis_url: str) -> LiveStation:
    """`scanner web` (8 threads) and one `scanner worker` on the uploads queue. Ready once
    the web answers a page (its /healthz says 503 without a hardware worker)."""
    app = build_app(data_dir, database_url, SCANNER_REDIS_URL=redis_url)
    from scanner_app.accounts.service import create_api_key

    with app.app_context():
        key = create_api_key("races")
    env = process_env(data_dir, SCANNER_REDIS_URL=redis_url, SCANNER_DATABASE_URL=database_url)
    port = free_port()
    web = Proc(cli("web", "--port", str(port), "--threads", "8"), env)
    worker = Proc(cli("worker", "--queues", "uploads", "--name", f"races-{port}"), env)
    station = LiveStation(app, "127.0.0.1", port, key, web, [worker])

    def answers() -> bool:
        try:
            return _call(station, "GET", "/api/v1/sessions")[0] == 200
        except OSError:
            return False

    wait_until(answers, 30, "the web server to answer")
    return station


def _json(station, method, path, payload=None):
    return _call(station, method, path, json.dumps(payload or {}).encode())


def _new_session(station: LiveStation, name: str) -> int:
    status, body = _json(station, "POST", "/api/v1/sessions",
                         {"name": name, "make_current": False})
    assert status == 201, body
    return body.get("session", body)["id"]


def _upload(station: LiveStation, session_id: int, n: int) -> tuple[int, dict]:
    body = multipart_body([(f"r{n}.png", image_bytes("PNG", (32, 24), seed=n + 1))], BOUNDARY,
                          fields={"session_id": str(session_id)})
    return _call(station, "POST", "/api/v1/uploads", body,
                 f"multipart/form-data; boundary={BOUNDARY}")


def _race(station: LiveStation, session_id: int, target: int | None, round_no: int
          ) -> list[tuple[str, int, dict]]:
    """Uploads and the delete (or the merge into `target`) at the same instant."""
    jobs = [("upload", lambda n=n: _upload(station, session_id, round_no * 100 + n))
            for n in range(UPLOADS_PER_ROUND)]
    # A scan start too: it locks the session row (its counter) before inserting the scan, in
    # the order a delete or merge locks, so on PostgreSQL the race cannot deadlock (a 500).
    jobs.append(("scan", lambda: _json(station, "POST", "/api/v1/scans",
                                       {"session_id": session_id, "frames": 4})))
    if target is None:
        jobs.append(("delete", lambda: _call(station, "DELETE", f"/api/v1/sessions/{session_id}")))
    else:
        jobs.append(("merge", lambda: _json(station, "POST",
                                            f"/api/v1/sessions/{session_id}/merge",
                                            {"into": target})))
    start = threading.Barrier(len(jobs))

    def run(job):
        start.wait(30)
        status, body = job[1]()
        return job[0], status, body

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(run, jobs))


ALLOWED = {"upload": {201, 404}, "scan": {202, 404, 409}, "delete": {204, 409},
           "merge": {200, 409}}


def _check_answers(answers: list[tuple[str, int, dict]]) -> None:
    for what, status, body in answers:
        assert status in ALLOWED[what], (what, status, body)
        if status >= 400:
            house_error(body)


def _cancel_scans(station: LiveStation, answers) -> None:
    """A queued scan would hold the next round's scans (and deletes) at 409."""
    for what, status, body in answers:
        if what == "scan" and status == 202:
            scan = body.get("scan", body)
            _json(station, "POST", f"/api/v1/scans/{scan['id']}/cancel")


def _no_folder_without_a_row(station: LiveStation, data_dir) -> None:
    with station.app.app_context():
        rows = set(db.session.scalars(select(ScanSession.id)))
        db.session.commit()
    on_disk = set(StorageManager(data_dir).session_dir_ids())
    assert on_disk <= rows, f"folders of deleted sessions: {sorted(on_disk - rows)}"


def test_uploads_racing_deletes_and_merges(data_dir, database_url,
                                                           redis_server):
    station = start_station(data_dir, database_url, redis_server)
    try:
        keep = _new_session(station, "Keeper")
        seen: set[tuple[str, int]] = set()
        for round_no in range(ROUNDS):
            victim = _new_session(station, f"Victim {round_no}")
            merging = round_no % 2 == 1
            answers = _race(station, victim, keep if merging else None, round_no)
            try:
                _check_answers(answers)
            except AssertionError:
                print(station.web.output[-6000:])  # the traceback behind a 500
                raise
            _cancel_scans(station, answers)
            seen |= {(what, status) for what, status, _ in answers}
            if not merging:
                # Deleted (or refused while a scan of it was queued): delete it for good.
                for _ in range(3):
                    status, _ = _call(station, "DELETE", f"/api/v1/sessions/{victim}")
                    if status in (204, 404):
                        break
            _no_folder_without_a_row(station, data_dir)
        assert ("delete", 204) in seen and ("merge", 200) in seen  # the races were run
    finally:
        stop_station(station)
    report = run_cli(data_dir, "doctor", SCANNER_DATABASE_URL=database_url,
                     SCANNER_REDIS_URL=redis_server)
    assert "Traceback" not in report.stderr, report.stderr
    assert "belongs to no session" not in report.stdout, report.stdout
