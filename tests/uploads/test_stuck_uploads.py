"""Issue 10, finding 6: uploads stuck in 'processing'. Real `scanner worker` processes (here a
worker that forks a work-horse per job) and a real Redis; a file of the batch is a named pipe,
so the work-horse blocks on it (in flight) until it is killed: no sleeps, no guessing where
the horse is."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from rq import Queue
from sqlalchemy import select, update

from scanner_app.models import Upload
from scanner_app.platform.clock import utcnow
from scanner_app.platform.extensions import db
from scanner_app.uploads.job import KILLED_SENTENCE
from tests.support import run_cli, wait_until
from tests.uploads.conftest import counted, counters, run_worker, worker_command
from tests.uploads.helpers import image_bytes, post_files, zip_bytes


def _upload(client, upload_id: int) -> dict:
    answer = client.get(f"/api/v1/uploads/{upload_id}").get_json()
    return answer.get("upload", answer)


def _stored_file(data_dir: Path, session_id: int, upload_id: int) -> Path:
    folder = data_dir / "sessions" / str(session_id) / "images" / "uploads" / str(upload_id)
    (only,) = list(folder.iterdir())
    return only


def _jam(path: Path) -> bytes:
    """Swap the stored file for a named pipe: reading it blocks until someone writes."""
    data = path.read_bytes()
    path.unlink()
    os.mkfifo(path)
    return data


def _unjam(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


def _claim_of(app, upload_id: int) -> str | None:
    with app.app_context():
        token = db.session.scalar(select(Upload.claim_token).where(Upload.id == upload_id))
        db.session.commit()
        return token


def _horse_of(worker: subprocess.Popen) -> int:
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
    return int(children[0]) if children else 0


def _start_worker_until_in_flight(app, data_dir, redis_server, in_flight: int
                                  ) -> tuple[subprocess.Popen, int]:
    # A worker with the hardware queue too forks a work-horse per job (the uploads worker
    # alone runs them itself: test_in_process_worker.py).
    command, env = worker_command(app, data_dir, redis_server, "uploads,hardware")
    worker = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    wait_until(lambda: (_claim_of(app, in_flight) or "").startswith("job:"), 60,
               "the work-horse to take the jammed file")
    return worker, wait_until(lambda: _horse_of(worker), 10, "the work-horse's pid")


def _batch(client, data_dir) -> tuple[dict, list[int], Path, bytes]:
    files = [("a.jpg", image_bytes(seed=1)), ("b.jpg", image_bytes(seed=2)),
             ("c.zip", zip_bytes({"c1.jpg": image_bytes(seed=3), "c2.jpg": image_bytes(seed=4)})),
             ("d.jpg", image_bytes(seed=5))]
    body = post_files(client, files).get_json()
    ids = [u["id"] for u in body["uploads"]]
    jammed = _stored_file(data_dir, body["session_id"], ids[1])
    return body, ids, jammed, _jam(jammed)


def test_a_work_horse_killed_mid_batch_fails_only_the_file_in_flight(
        queued_app, queued_client, data_dir, redis_server, redis_conn):
    body, (a, b, c, d), jammed, _ = _batch(queued_client, data_dir)
    worker, horse = _start_worker_until_in_flight(queued_app, data_dir, redis_server, b)
    try:
        os.kill(horse, signal.SIGKILL)
        # A burst worker: it handles the killed horse, runs the job that retries the files
        # never reached, and exits once the queue is empty.
        output, _ = worker.communicate(timeout=120)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, output
    states = {i: (_upload(queued_client, i)["status"], _upload(queued_client, i)["error"])
              for i in (a, b, c, d)}
    assert states == {a: ("done", None), b: ("failed", KILLED_SENTENCE), c: ("done", None),
                      d: ("done", None)}
    assert jammed.exists()  # the failed file is kept
    expected = {"files_count": 4, "captures_count": 4, "valid_count": 4, "invalid_count": 0}
    assert counters(queued_app, body["session_id"]) == expected == counted(
        queued_app, body["session_id"])


@pytest.mark.parametrize("recovered_by", ["doctor --repair", "worker start"])
def test_worker_and_horse_killed_the_doctor_reports_and_repair_or_worker_requeues(
        queued_app, queued_client, data_dir, redis_server, redis_conn, recovered_by):
    body, (a, b, c, d), jammed, data = _batch(queued_client, data_dir)
    worker, horse = _start_worker_until_in_flight(queued_app, data_dir, redis_server, b)
    os.kill(worker.pid, signal.SIGKILL)
    os.kill(horse, signal.SIGKILL)
    worker.communicate(timeout=30)
    _unjam(jammed, data)
    assert _upload(queued_client, a)["status"] == "done"
    assert [_upload(queued_client, i)["status"] for i in (b, c, d)] == ["processing"] * 3
    env = {"SCANNER_DATABASE_URL": queued_app.config["TEST_DATABASE_URL"],
           "SCANNER_REDIS_URL": redis_server}

    report = run_cli(data_dir, "doctor", **env)
    assert report.returncode == 1, report.stdout + report.stderr
    assert (f"PROBLEM  3 uploads ({b}, {c}, {d}) are marked as processing, but no worker is "
            "processing them") in report.stdout
    assert "--repair queues them again." in report.stdout
    assert "Traceback" not in report.stderr

    if recovered_by == "doctor --repair":
        repaired = run_cli(data_dir, "doctor", "--repair", **env)
        assert "FIXED" in repaired.stdout and "They were queued again" in repaired.stdout
        assert [job.args[0] for job in Queue("uploads", connection=redis_conn).jobs] == [
            [b, c, d]]
    run_worker(queued_app, data_dir, redis_server)  # its start queues them (if not yet)
    assert [_upload(queued_client, i)["status"] for i in (a, b, c, d)] == ["done"] * 4
    expected = {"files_count": 4, "captures_count": 5, "valid_count": 5, "invalid_count": 0}
    assert counters(queued_app, body["session_id"]) == expected == counted(
        queued_app, body["session_id"])
    again = run_cli(data_dir, "doctor", **env)
    assert "no worker is processing" not in again.stdout, again.stdout


def test_a_full_disk_during_extraction_leaves_the_upload_for_a_retry(
        queued_app, queued_client, data_dir, redis_server, redis_conn, monkeypatch):
    """ENOSPC while unpacking: not the file's fault, so it is not failed; the doctor reports
    it and --repair queues it again once there is space."""
    from scanner_app.uploads import processing
    from scanner_app.uploads.job import process_uploads

    archive = zip_bytes({f"{i}.jpg": image_bytes(seed=i + 10) for i in range(3)})
    body = post_files(queued_client, [("full.zip", archive)]).get_json()
    (upload_id,) = [u["id"] for u in body["uploads"]]
    Queue("uploads", connection=redis_conn).empty()  # this test runs the job itself
    real_copy = processing.copy_member
    copies: list[str] = []

    def copy_until_full(archive, info, dest, budget):
        copies.append(info.filename)
        if len(copies) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_copy(archive, info, dest, budget)

    monkeypatch.setattr(processing, "copy_member", copy_until_full)
    with queued_app.app_context():
        assert process_uploads([upload_id]) == {"done": 0, "failed": 0, "skipped": 1}
        db.session.execute(update(Upload).values(created_at=utcnow() - timedelta(minutes=10)))
        db.session.commit()
    monkeypatch.undo()  # space freed
    left = _upload(queued_client, upload_id)
    assert (left["status"], left["error"]) == ("processing", None)
    assert _claim_of(queued_app, upload_id) is None

    env = {"SCANNER_DATABASE_URL": queued_app.config["TEST_DATABASE_URL"],
           "SCANNER_REDIS_URL": redis_server}
    report = run_cli(data_dir, "doctor", **env)
    assert f"PROBLEM  Upload {upload_id} is marked as processing" in report.stdout
    repaired = run_cli(data_dir, "doctor", "--repair", **env)
    assert "They were queued again" in repaired.stdout, repaired.stdout
    run_worker(queued_app, data_dir, redis_server)
    done = _upload(queued_client, upload_id)
    assert (done["status"], done["valid_count"]) == ("done", 3)
    assert counters(queued_app, body["session_id"]) == counted(queued_app, body["session_id"])
