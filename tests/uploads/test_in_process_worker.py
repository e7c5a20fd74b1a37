"""Issue 15: the uploads worker runs upload jobs in its own process, in runs (no work-horse per
job, session.json once per run). Real `scanner worker --queues uploads` processes, a real Redis,
SQLite and PostgreSQL. Crash safety: a killed uploads worker leaves every upload to the next
worker, and a file that kills the worker's process twice is failed instead of retried forever.
A file in flight is a named pipe, so the worker blocks on it until killed: no sleeps."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

from scanner_app.models.session import COUNTERS
from scanner_app.uploads.job import KILLED_SENTENCE
from tests.support import wait_until
from tests.uploads.conftest import counted, counters, run_worker, worker_command
from tests.uploads.helpers import image_bytes, post_files, zip_bytes
from tests.uploads.test_stuck_uploads import _claim_of, _jam, _stored_file, _unjam, _upload


def _ran_in_process(output: str) -> int:
    return sum(int(n) for n in re.findall(r"Ran (\d+) upload job\(s\) in the worker's own "
                                          r"process", output))


def test_single_uploads_are_processed_in_runs_without_a_work_horse(
        queued_app, queued_client, data_dir, redis_server, redis_conn):
    count = 200
    session_id = None
    ids = []
    for seed in range(1, count + 1):
        body = post_files(queued_client, [(f"{seed}.jpg", image_bytes(seed=seed))],
                          session_id).get_json()
        session_id = body["session_id"]
        ids.append(body["uploads"][0]["id"])
    assert len(redis_conn.lrange("rq:queue:uploads", 0, -1)) == count  # one job per request

    output = run_worker(queued_app, data_dir, redis_server)
    assert _ran_in_process(output) == count, output  # every job in the worker's process
    assert "Forked" not in output
    assert {_upload(queued_client, i)["status"] for i in ids} == {"done"}
    expected = {"files_count": count, "captures_count": count, "valid_count": count,
                "invalid_count": 0}
    assert counters(queued_app, session_id) == expected == counted(queued_app, session_id)
    record = json.loads((data_dir / "sessions" / str(session_id) / "metadata"
                         / "session.json").read_text())
    assert {name: record[name] for name in expected} == expected
    assert record["scans_count"] == 0 and set(COUNTERS) <= set(record)


def _batch(client, data_dir) -> tuple[dict, list[int], Path, bytes]:
    files = [("a.jpg", image_bytes(seed=1)), ("b.jpg", image_bytes(seed=2)),
             ("c.zip", zip_bytes({"c1.jpg": image_bytes(seed=3), "c2.jpg": image_bytes(seed=4)})),
             ("d.jpg", image_bytes(seed=5))]
    body = post_files(client, files).get_json()
    ids = [u["id"] for u in body["uploads"]]
    jammed = _stored_file(data_dir, body["session_id"], ids[1])
    return body, ids, jammed, _jam(jammed)


def _kill_worker_in_flight(app, data_dir, redis_server, upload_id: int,
                           old_token: str | None = None) -> str:
    """Start an uploads worker, wait until it works on `upload_id` (a new claim), SIGKILL it.
    The worker has no work-horse: killing it kills the run. Returns the claim it held."""
    command, env = worker_command(app, data_dir, redis_server)
    command = [arg for arg in command if arg != "--burst"]
    worker = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        token = wait_until(lambda: (t := _claim_of(app, upload_id) or "").startswith("job:")
                           and t != old_token and t, 60, "the worker to take the jammed file")
        children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
        assert children == [], "the uploads worker forked a work-horse"
        os.kill(worker.pid, signal.SIGKILL)
        worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    return token


def test_a_killed_uploads_worker_leaves_every_upload_to_the_next_one(
        queued_app, queued_client, data_dir, redis_server, redis_conn):
    body, (a, b, c, d), jammed, data = _batch(queued_client, data_dir)
    _kill_worker_in_flight(queued_app, data_dir, redis_server, b)
    assert _upload(queued_client, a)["status"] == "done"
    assert [_upload(queued_client, i)["status"] for i in (b, c, d)] == ["processing"] * 3
    _unjam(jammed, data)

    output = run_worker(queued_app, data_dir, redis_server)  # its start queues them again
    assert "queued them again" in output, output
    assert [_upload(queued_client, i)["status"] for i in (a, b, c, d)] == ["done"] * 4
    expected = {"files_count": 4, "captures_count": 5, "valid_count": 5, "invalid_count": 0}
    assert counters(queued_app, body["session_id"]) == expected == counted(
        queued_app, body["session_id"])


def test_a_file_that_kills_the_worker_twice_is_failed_and_the_rest_done(
        queued_app, queued_client, data_dir, redis_server, redis_conn):
    body, (a, b, c, d), jammed, _ = _batch(queued_client, data_dir)
    first = _kill_worker_in_flight(queued_app, data_dir, redis_server, b)
    # The next worker's start queues b, c and d again; b kills it once more.
    _kill_worker_in_flight(queued_app, data_dir, redis_server, b, old_token=first)

    run_worker(queued_app, data_dir, redis_server)  # b is not processed a third time
    states = {i: (_upload(queued_client, i)["status"], _upload(queued_client, i)["error"])
              for i in (a, b, c, d)}
    assert states == {a: ("done", None), b: ("failed", KILLED_SENTENCE), c: ("done", None),
                      d: ("done", None)}
    assert jammed.exists()  # the failed file is kept
    expected = {"files_count": 4, "captures_count": 4, "valid_count": 4, "invalid_count": 0}
    assert counters(queued_app, body["session_id"]) == expected == counted(
        queued_app, body["session_id"])
