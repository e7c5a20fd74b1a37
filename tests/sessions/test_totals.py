"""Totals over all sessions (issue 15) are summed once and kept until a session changes, on
SQLite and PostgreSQL: a request that follows no change sums nothing; every change (a new
session, a frame's counters, an upload, a delete, a merge, a doctor recount) shows in the
very next request, also when another process (a real `scanner worker`, `scanner doctor`)
made it, or a scan's frames recorded by a worker while the list is polled)."""

from __future__ import annotations

from sqlalchemy import event, update

from scanner_app.models import ScanSession
from scanner_app.platform.extensions import db
from scanner_app.sessions.counters import bump_session_counters
from tests.scans.conftest import make_station, redis_url  # noqa: F401
from tests.support import run_cli, wait_until
from tests.uploads.conftest import queued_app, queued_client, redis_conn, run_worker  # noqa: F401
from tests.uploads.helpers import image_bytes, post_files

ZERO = dict.fromkeys(
    ("files_count", "captures_count", "valid_count", "invalid_count", "scans_count"), 0)


class SumCounter:
    """Counts the statements that sum the counters over all sessions."""

    def __init__(self, app) -> None:
        self.sums = 0
        with app.app_context():
            self.engine = db.engine
        event.listen(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn, _cursor, statement, *_args) -> None:
        if "sum(" in statement.lower() and "sessions" in statement.lower():
            self.sums += 1

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


def listed(client) -> tuple[int, dict[str, int]]:
    body = client.get("/api/v1/sessions").get_json()
    return body["total"], body["totals"]


def create(client, name: str) -> int:
    response = client.post("/api/v1/sessions", json={"name": name, "make_current": False})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    return body.get("session", body)["id"]


def test_totals_are_summed_once_and_kept_until_a_session_changes(app, client, data_dir):
    first = create(client, "Trial one")
    sums = SumCounter(app)
    try:
        assert listed(client) == (1, ZERO)
        assert sums.sums == 1
        for _ in range(3):  # nothing changed: nothing summed, the same answer
            assert listed(client) == (1, ZERO)
        assert client.get("/sessions", headers={"HX-Request": "true"}).status_code == 200
        assert sums.sums == 1
        with app.app_context():  # what a recorded scan frame does
            assert bump_session_counters(first, captures_count=1, valid_count=1)
            db.session.commit()
        assert listed(client) == (1, {**ZERO, "captures_count": 1, "valid_count": 1})
        assert sums.sums == 2
        with app.app_context():  # a rolled-back change changes nothing
            bump_session_counters(first, scans_count=5)
            db.session.rollback()
        assert listed(client) == (1, {**ZERO, "captures_count": 1, "valid_count": 1})
        assert sums.sums == 2
        # A station whose stamp is missing (none made yet, or removed) makes one and keeps
        # the sum from then on.
        (data_dir / ".sessions-changed").unlink()
        assert listed(client) == (1, {**ZERO, "captures_count": 1, "valid_count": 1})
        assert listed(client) == (1, {**ZERO, "captures_count": 1, "valid_count": 1})
        assert sums.sums == 3
    finally:
        sums.close()


def test_every_change_shows_in_the_next_request(app, client, data_dir, database_url):
    first = create(client, "Trial one")
    assert listed(client) == (1, ZERO)
    second = create(client, "Trial two")
    assert listed(client) == (2, ZERO)

    with app.app_context():  # a scan started, and its frame recorded
        bump_session_counters(second, scans_count=1)
        db.session.commit()
        bump_session_counters(second, captures_count=1, valid_count=1)
        db.session.commit()
    assert listed(client) == (2, {**ZERO, "scans_count": 1, "captures_count": 1,
                                  "valid_count": 1})

    # An upload processed in the request (no Redis): a file, an image.
    response = post_files(client, [("a.jpg", image_bytes(seed=3))], session_id=first)
    assert response.status_code == 201
    both = {"files_count": 1, "scans_count": 1, "captures_count": 2, "valid_count": 2,
            "invalid_count": 0}
    assert listed(client) == (2, both)

    # Merge: one session fewer, the same totals.
    assert client.post(f"/api/v1/sessions/{first}/merge",
                       json={"into": second}).status_code == 200
    assert listed(client) == (1, both)

    # A write that bypasses the ORM Session is not seen (the kept sum is used) until the
    # next change made through it; then `scanner doctor --repair`, another process,
    # recounts from the rows (the frame and scan above were counters only: no rows).
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(update(ScanSession).where(ScanSession.id == second)
                     .values(captures_count=40))
    assert listed(client) == (1, both)
    create(client, "Trial three")
    assert listed(client) == (2, {**both, "captures_count": 40})
    done = run_cli(data_dir, "doctor", "--repair", SCANNER_DATABASE_URL=database_url)
    assert "recounted" in done.stdout + done.stderr, done.stdout + done.stderr
    assert listed(client) == (2, {**ZERO, "files_count": 1, "captures_count": 1,
                                  "valid_count": 1})

    assert client.delete(f"/api/v1/sessions/{second}").status_code == 204
    assert listed(client) == (1, ZERO)


def test_counters_changed_by_a_worker_process_show_at_once(
        queued_app, queued_client, data_dir, redis_server, redis_conn):  # noqa: F811
    session_id = create(queued_client, "Trial one")
    response = post_files(queued_client, [("a.jpg", image_bytes(seed=1)),
                                          ("b.jpg", image_bytes(seed=2))], session_id=session_id)
    assert response.status_code == 201
    # Counted on arrival; the images wait for the worker.
    assert listed(queued_client) == (1, {**ZERO, "files_count": 2})
    run_worker(queued_app, data_dir, redis_server)  # another process records the images
    assert listed(queued_client) == (1, {**ZERO, "files_count": 2, "captures_count": 2,
                                         "valid_count": 2})


def test_totals_never_lag_behind_the_frames_a_worker_process_records(
        make_station, database_url):  # noqa: F811
    station = make_station(database_url)
    station.start_worker()
    frames = 6
    scan = station.start_scan(profile="quick", frames=frames)
    seen: list[tuple[int, int]] = []

    def frames_shown_in_totals() -> bool:
        # A frame's capture row, the scan's progress and the session's counters are one
        # commit: the totals read after the scan must count at least the frames it shows.
        captured = station.scan(scan["id"])["frames_captured"]
        totals = listed(station.client)[1]
        assert totals["captures_count"] >= captured, (captured, totals)
        seen.append((captured, totals["captures_count"]))
        return captured == frames and totals["captures_count"] == frames

    wait_until(frames_shown_in_totals, 60, "every frame counted in the totals")
    assert any(0 < captured < frames for captured, _ in seen)  # also seen part way
    station.wait_for_status(scan["id"], "completed")
    assert listed(station.client) == (1, {**ZERO, "scans_count": 1, "captures_count": frames,
                                          "valid_count": frames})
