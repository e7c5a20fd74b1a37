"""One upload, one processing run at a time: runs claim uploads atomically, keep their claim
alive while they work, and a run that lost its claim stops without counting anything.

Two runs for one upload happen for real when Redis fails at enqueue (the request processes
the files itself) or only seems to fail (a timeout after the job was queued), and when the
worker's recovery queues again uploads whose run stopped renewing its claim.
"""

from __future__ import annotations

import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from rq import Queue
from rq.job import Job
from sqlalchemy import select, update

from scanner_app.models import Upload
from scanner_app.platform.clock import utcnow
from scanner_app.platform.extensions import db
from scanner_app.uploads import recorder as upload_recorder
from scanner_app.uploads import service as upload_service
from scanner_app.uploads.claims import LEASE, Claim, new_token
from scanner_app.uploads.recorder import Recorder
from tests.uploads.conftest import (
    captures_of,
    counted,
    counters,
    run_worker,
    worker_command,
)
from tests.uploads.helpers import image_bytes, post_files, zip_bytes

ARCHIVE = {f"{i}.jpg": image_bytes(seed=i + 1) for i in range(4)}
ONCE = {"files_count": 1, "captures_count": 4, "valid_count": 4, "invalid_count": 0}


class Run(threading.Thread):
    """process_uploads in a thread of its own: its own app context, database session and
    connection, as a second process would have."""

    def __init__(self, app, upload_ids: list[int], name: str):
        super().__init__(name=name, daemon=True)
        self.app, self.upload_ids = app, upload_ids
        self.result: dict | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        from scanner_app.uploads.job import process_uploads

        try:
            with self.app.app_context():
                self.result = process_uploads(self.upload_ids)
        except BaseException as exc:  # noqa: BLE001 - reported by finish()
            self.error = exc

    def finish(self) -> dict:
        self.join(60)
        assert not self.is_alive(), f"{self.name} did not end"
        assert self.error is None, self.error
        return self.result


@pytest.fixture
def record_only(monkeypatch):
    """Requests record their files but neither queue nor process them: the test does."""
    monkeypatch.setattr(upload_service, "_start_processing", lambda settings, ids: None)


@pytest.fixture
def pause_first_run(monkeypatch):
    """The run in thread 'first' stops after recording its first batch (one capture) until
    the test lets it go on. Yields (paused, go_on)."""
    monkeypatch.setattr(upload_recorder, "BATCH_SIZE", 1)
    paused, go_on = threading.Event(), threading.Event()
    real_flush = Recorder.flush

    def flush(self):
        real_flush(self)
        if threading.current_thread().name == "first" and self.recorded and not paused.is_set():
            paused.set()
            assert go_on.wait(60), "the test never let the first run go on"

    monkeypatch.setattr(Recorder, "flush", flush)
    yield paused, go_on
    go_on.set()  # never leave a thread waiting


def upload_row(app, upload_id: int) -> Upload:
    with app.app_context():
        row = db.session.get(Upload, upload_id)
        db.session.expunge(row)
        return row


def extracted_names(data_dir: Path, session_id: int, upload_id: int) -> list[str]:
    folder = (data_dir / "sessions" / str(session_id) / "images" / "uploads" / str(upload_id)
              / "a")
    return sorted(p.name for p in folder.iterdir())


def test_a_second_run_leaves_an_upload_another_run_holds(app, client, data_dir, record_only,
                                                         pause_first_run):
    from scanner_app.uploads.job import process_uploads

    paused, go_on = pause_first_run
    body = post_files(client, [("a.zip", zip_bytes(ARCHIVE))]).get_json()
    upload_id, session_id = body["uploads"][0]["id"], body["session_id"]

    first = Run(app, [upload_id], "first")
    first.start()
    assert paused.wait(30), "the first run never recorded its first batch"
    assert upload_row(app, upload_id).claim_token.startswith("request:")

    with app.app_context():  # e.g. the queued job, while the request processes the files
        assert process_uploads([upload_id]) == {"done": 0, "failed": 0, "skipped": 1}
    assert counters(app, session_id)["captures_count"] == 1  # only the first run's batch

    go_on.set()
    assert first.finish() == {"done": 1, "failed": 0, "skipped": 0}
    row = upload_row(app, upload_id)
    assert (row.status, row.captures_count, row.claim_token) == ("done", 4, None)
    assert counters(app, session_id) == ONCE == counted(app, session_id)
    assert extracted_names(data_dir, session_id, upload_id) == sorted(ARCHIVE)


def test_a_run_that_lost_its_claim_stops_without_touching_counters(
        app, client, data_dir, record_only, pause_first_run):
    from scanner_app.uploads.job import process_uploads

    paused, go_on = pause_first_run
    body = post_files(client, [("a.zip", zip_bytes(ARCHIVE))]).get_json()
    upload_id, session_id = body["uploads"][0]["id"], body["session_id"]

    first = Run(app, [upload_id], "first")
    first.start()
    assert paused.wait(30), "the first run never recorded its first batch"
    with app.app_context():  # the first run stalls past its lease ...
        db.session.execute(update(Upload).where(Upload.id == upload_id).values(
            claimed_at=utcnow() - LEASE - timedelta(seconds=1)))
        db.session.commit()
        # ... so a second run takes the upload over, undoes the partial count, does it all.
        assert process_uploads([upload_id]) == {"done": 1, "failed": 0, "skipped": 0}
    assert counters(app, session_id) == ONCE == counted(app, session_id)

    go_on.set()  # the first run wakes up: its claim is gone, so it stops
    assert first.finish() == {"done": 0, "failed": 0, "skipped": 1}
    row = upload_row(app, upload_id)
    assert (row.status, row.error, row.captures_count) == ("done", None, 4)
    assert counters(app, session_id) == ONCE == counted(app, session_id)
    assert sorted(Path(c["path"]).name for c in captures_of(app, upload_id)) == sorted(ARCHIVE)
    assert extracted_names(data_dir, session_id, upload_id) == sorted(ARCHIVE)  # no strays
    thumbs = data_dir / "sessions" / str(session_id) / "metadata" / "thumbnails"
    assert sorted(p.name for p in thumbs.iterdir()) == sorted(
        f"{c['id']}.jpg" for c in captures_of(app, upload_id))


def test_two_runs_racing_over_a_batch_count_each_upload_once(app, client, record_only):
    files = [(f"{i}.jpg", image_bytes(seed=i + 1)) for i in range(6)]
    files.append(("a.zip", zip_bytes({f"z{i}.png": image_bytes("PNG", seed=40 + i)
                                      for i in range(5)})))
    body = post_files(client, files).get_json()
    ids = [u["id"] for u in body["uploads"]]

    start = threading.Barrier(2)

    class RacingRun(Run):
        def run(self) -> None:
            start.wait(10)
            super().run()

    runs = [RacingRun(app, ids, f"racer-{n}") for n in range(2)]
    for run in runs:
        run.start()
    results = [run.finish() for run in runs]
    assert sum(r["done"] for r in results) == len(ids)  # each upload done by one run ...
    assert sum(r["skipped"] for r in results) == len(ids)  # ... and left by the other
    expected = {"files_count": 7, "captures_count": 11, "valid_count": 11, "invalid_count": 0}
    assert counters(app, body["session_id"]) == expected == counted(app, body["session_id"])


def test_recovery_leaves_a_live_claim_alone_and_takes_an_expired_one(
        queued_app, queued_client, data_dir, redis_server, redis_conn):
    from scanner_app.uploads.recovery import recover_stuck_uploads

    body = post_files(queued_client, [(f"{i}.jpg", image_bytes(seed=i + 1))
                                      for i in range(3)]).get_json()
    live, expired, unclaimed = (u["id"] for u in body["uploads"])
    Queue("uploads", connection=redis_conn).empty()  # the request's job is lost
    settings = queued_app.config["SCANNER_SETTINGS"]
    with queued_app.app_context():
        db.session.execute(update(Upload).values(created_at=utcnow() - timedelta(hours=1)))
        db.session.commit()
        # One run works on `live` (for an hour already, renewing its claim); another held
        # `expired` but stopped renewing it.
        assert Claim.take([live], new_token()).holds(live)
        assert Claim.take([expired], new_token("dead-job")).holds(expired)
        db.session.execute(update(Upload).where(Upload.id == expired).values(
            claimed_at=utcnow() - LEASE - timedelta(seconds=1)))
        db.session.commit()

        assert recover_stuck_uploads(settings) == [expired, unclaimed]
        tokens = dict(db.session.execute(select(Upload.id, Upload.claim_token)).all())
        assert tokens[live].startswith("request:") and tokens[expired] is None
        assert recover_stuck_uploads(settings) == []  # queued once, not twice
    jobs = Queue("uploads", connection=redis_conn).jobs
    assert [job.args[0] for job in jobs] == [[expired, unclaimed]]

    run_worker(queued_app, data_dir, redis_server)
    statuses = {
        u["id"]: queued_client.get(f"/api/v1/uploads/{u['id']}").get_json()["upload"]["status"]
        for u in body["uploads"]}
    assert statuses == {live: "processing", expired: "done", unclaimed: "done"}
    assert counters(queued_app, body["session_id"]) == {
        "files_count": 3, "captures_count": 2, "valid_count": 2, "invalid_count": 0}


def _enqueue_then_time_out(monkeypatch, before_raising=None):
    """Redis takes the job, but the answer times out: the request believes the queue is
    down and processes the files itself, while the job is there for a worker too."""
    real_enqueue = Queue.enqueue
    jobs: list[Job] = []

    def enqueue(self, *args, **kwargs):
        jobs.append(real_enqueue(self, *args, **kwargs))
        if before_raising is not None:
            before_raising(jobs[-1])
        raise redis.exceptions.TimeoutError("Timeout reading from socket")

    monkeypatch.setattr(Queue, "enqueue", enqueue)
    return jobs


def test_a_job_queued_despite_a_timeout_does_not_count_the_files_again(
        queued_app, queued_client, data_dir, redis_server, redis_conn, monkeypatch):
    jobs = _enqueue_then_time_out(monkeypatch)
    files = [("a.zip", zip_bytes(ARCHIVE)), ("b.jpg", image_bytes(seed=50))]
    response = post_files(queued_client, files)
    assert response.status_code == 201
    body = response.get_json()
    assert [u["status"] for u in body["uploads"]] == ["done", "done"]  # done in the request
    assert len(jobs) == 1 and Queue("uploads", connection=redis_conn).count == 1

    run_worker(queued_app, data_dir, redis_server)
    assert jobs[0].fetch(jobs[0].id, connection=redis_conn).return_value() == {
        "done": 0, "failed": 0, "skipped": 2}
    expected = {"files_count": 2, "captures_count": 5, "valid_count": 5, "invalid_count": 0}
    assert counters(queued_app, body["session_id"]) == expected == counted(
        queued_app, body["session_id"])


def test_a_request_leaves_the_files_a_running_job_claimed_first(
        queued_app, queued_client, data_dir, redis_server, redis_conn, monkeypatch):
    """The job gets going before the request's timeout fires: the request processes
    nothing, the real worker does it all, and every file counts once."""
    workers: list[subprocess.Popen] = []

    def start_worker_and_wait_for_its_claim(job: Job) -> None:
        command, env = worker_command(queued_app, data_dir, redis_server)
        workers.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True))
        ids = job.args[0]
        deadline = time.monotonic() + 60
        with db.engine.connect() as conn:  # not the request's own session
            while True:
                rows = conn.execute(select(Upload.status, Upload.claim_token)
                                    .where(Upload.id.in_(ids))).all()
                conn.rollback()
                if all(s != "processing" or (t or "").startswith("job:") for s, t in rows):
                    return
                assert time.monotonic() < deadline, "the worker never claimed the uploads"
                assert workers[0].poll() is None, workers[0].stdout.read()
                time.sleep(0.05)

    jobs = _enqueue_then_time_out(monkeypatch, start_worker_and_wait_for_its_claim)
    files = [("a.zip", zip_bytes(ARCHIVE)), ("b.jpg", image_bytes(seed=51))]
    try:
        response = post_files(queued_client, files)
        assert response.status_code == 201
        output, _ = workers[0].communicate(timeout=120)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert workers[0].returncode == 0, output
    assert jobs[0].fetch(jobs[0].id, connection=redis_conn).return_value() == {
        "done": 2, "failed": 0, "skipped": 0}  # the job did it all; the request nothing
    body = response.get_json()
    for upload in body["uploads"]:
        answer = queued_client.get(f"/api/v1/uploads/{upload['id']}").get_json()["upload"]
        assert (answer["status"], answer["error"]) == ("done", None)
    expected = {"files_count": 2, "captures_count": 5, "valid_count": 5, "invalid_count": 0}
    assert counters(queued_app, body["session_id"]) == expected == counted(
        queued_app, body["session_id"])


def test_a_killed_job_fails_only_the_uploads_no_other_live_run_holds(app, client,
                                                                     record_only):
    """What the worker does when an uploads job's process was killed: mark_failed(...)."""
    from scanner_app.uploads.job import KILLED_SENTENCE, mark_failed

    body = post_files(client, [(f"{i}.jpg", image_bytes(seed=i + 1))
                               for i in range(4)]).get_json()
    in_request, by_job, by_other_job, unclaimed = (u["id"] for u in body["uploads"])
    with app.app_context():
        Claim.take([in_request], new_token())
        Claim.take([by_job], new_token("job-1"))
        Claim.take([by_other_job], new_token("job-2"))
        mark_failed([in_request, unclaimed], KILLED_SENTENCE)  # without knowing the job
        mark_failed([by_job, by_other_job], KILLED_SENTENCE, job_id="job-1")
    statuses = {u["id"]: upload_row(app, u["id"]).status for u in body["uploads"]}
    assert statuses == {in_request: "processing", by_job: "failed",
                        by_other_job: "processing", unclaimed: "failed"}
    assert upload_row(app, by_job).error == KILLED_SENTENCE


def test_a_working_run_renews_the_lease_of_its_whole_batch(app, client, record_only,
                                                           monkeypatch):
    from scanner_app.uploads import claims as upload_claims
    from scanner_app.uploads.claims import ClaimLost, release_expired

    body = post_files(client, [(f"{i}.jpg", image_bytes(seed=i + 1))
                               for i in range(2)]).get_json()
    first, second = (u["id"] for u in body["uploads"])
    almost_expired = utcnow() - LEASE + timedelta(seconds=30)
    with app.app_context():
        claim = Claim.take([first, second], new_token())
        assert claim.holds(first) and claim.holds(second)
        db.session.execute(update(Upload).values(claimed_at=almost_expired))
        db.session.commit()
        claim.checkpoint(first)  # not due yet: only checks the claim
        assert db.session.get(Upload, second).claimed_at == almost_expired
        db.session.commit()

        monkeypatch.setattr(upload_claims, "RENEW_SECONDS", 0.0)
        claim.checkpoint(first)  # due: every upload the run holds is renewed
        leases = dict(db.session.execute(select(Upload.id, Upload.claimed_at)).all())
        db.session.commit()
        assert all(lease > utcnow() - timedelta(minutes=1) for lease in leases.values())
        assert release_expired() == []

        # Taken away meanwhile (its lease had run out): the next checkpoint says so.
        db.session.execute(update(Upload).where(Upload.id == second).values(
            claim_token=new_token("other-job")))
        db.session.commit()
        with pytest.raises(ClaimLost):
            claim.checkpoint(second)
        assert not claim.holds(second)
