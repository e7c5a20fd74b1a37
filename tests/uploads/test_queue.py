"""The queued path: a real Redis, a real `scanner worker` process on the uploads queue, and a
session merged or deleted while its uploads wait in the queue."""

from __future__ import annotations

from pathlib import Path

from rq import Queue

from scanner_app.models import Capture, Upload
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import StorageManager
from tests.uploads.conftest import captures_of, counted, counters, run_worker, session_ids
from tests.uploads.helpers import image_bytes, post_files, zip_bytes


def test_uploads_are_queued_on_the_uploads_queue_and_a_worker_processes_them(
        queued_app, queued_client, data_dir, redis_server, redis_conn):
    response = post_files(queued_client, [("a.jpg", image_bytes(seed=1)),
                                          ("b.txt", b"not an image")])
    assert response.status_code == 201
    body = response.get_json()
    assert [u["status"] for u in body["uploads"]] == ["processing", "processing"]
    assert Queue("uploads", connection=redis_conn).count == 1  # one job for the request
    assert Queue("hardware", connection=redis_conn).count == 0  # never the rig's queue
    session_id = body["session_id"]
    assert counters(queued_app, session_id)["files_count"] == 2  # counted on arrival

    run_worker(queued_app, data_dir, redis_server)
    for upload in body["uploads"]:
        answer = queued_client.get(f"/api/v1/uploads/{upload['id']}").get_json()["upload"]
        assert answer["status"] == "done"
    expected = {"files_count": 2, "captures_count": 2, "valid_count": 1, "invalid_count": 1}
    assert counters(queued_app, session_id) == expected == counted(queued_app, session_id)
    capture = captures_of(queued_app, body["uploads"][0]["id"])[0]
    thumb = data_dir / "sessions" / str(session_id) / "metadata" / "thumbnails"
    assert (thumb / f"{capture['id']}.jpg").exists()


def test_a_session_merged_while_its_upload_waits_gets_the_work(
        queued_app, queued_client, data_dir, redis_server):
    archive = zip_bytes({f"f/{i}.jpg": image_bytes(seed=i + 1) for i in range(3)})
    body = post_files(queued_client, [("scan.zip", archive), ("x.jpg", image_bytes(seed=9))])
    body = body.get_json()
    source = body["session_id"]
    target = queued_client.post("/api/v1/sessions",
                                json={"name": "Target", "make_current": False}
                                ).get_json()["session"]["id"]
    merged = queued_client.post(f"/api/v1/sessions/{source}/merge", json={"into": target})
    assert merged.status_code == 200

    run_worker(queued_app, data_dir, redis_server)
    assert session_ids(queued_app) == [target]
    expected = {"files_count": 2, "captures_count": 4, "valid_count": 4, "invalid_count": 0}
    assert counters(queued_app, target) == expected == counted(queued_app, target)
    zip_upload = body["uploads"][0]["id"]
    for capture in captures_of(queued_app, zip_upload):
        assert capture["session_id"] == target
        assert (data_dir / "sessions" / str(target) / capture["path"]).is_file()
        thumb = StorageManager(data_dir).session_dir(target) / "metadata" / "thumbnails"
        assert (thumb / f"{capture['id']}.jpg").is_file()
    assert not (data_dir / "sessions" / str(source)).exists()  # never re-created


def test_a_session_deleted_while_its_upload_waits_is_left_alone(
        queued_app, queued_client, data_dir, redis_server):
    body = post_files(queued_client, [("a.jpg", image_bytes(seed=1))]).get_json()
    session_id = body["session_id"]
    assert queued_client.delete(f"/api/v1/sessions/{session_id}").status_code == 204

    run_worker(queued_app, data_dir, redis_server)
    assert not (data_dir / "sessions" / str(session_id)).exists()
    assert session_ids(queued_app) == []
    with queued_app.app_context():
        assert db.session.query(Upload).count() == 0
        assert db.session.query(Capture).count() == 0


def test_a_run_that_crashed_half_way_is_redone_counting_once(
        queued_app, queued_client, data_dir, redis_server):
    from datetime import timedelta

    from sqlalchemy import update

    from scanner_app.platform.clock import utcnow
    from scanner_app.uploads.claims import LEASE, Claim, new_token
    from scanner_app.uploads.recorder import Draft, Recorder

    archive = zip_bytes({f"{i}.jpg": image_bytes(seed=i + 1) for i in range(4)})
    body = post_files(queued_client, [("a.zip", archive)]).get_json()
    upload_id, session_id = body["uploads"][0]["id"], body["session_id"]
    with queued_app.app_context():  # what a worker killed after its first batch leaves
        claim = Claim.take([upload_id], new_token("killed-job"))
        assert claim.holds(upload_id)
        recorder = Recorder(upload_id, StorageManager(data_dir), claim)
        recorder.add(Draft(("a", "0.jpg"), True, width=64, height=48))
        recorder.flush()
        # ... and its claim, no longer renewed by anyone, runs out.
        db.session.execute(update(Upload).values(
            claimed_at=utcnow() - LEASE - timedelta(seconds=1)))
        db.session.commit()
    assert counters(queued_app, session_id)["captures_count"] == 1

    run_worker(queued_app, data_dir, redis_server)
    expected = {"files_count": 1, "captures_count": 4, "valid_count": 4, "invalid_count": 0}
    assert counters(queued_app, session_id) == expected == counted(queued_app, session_id)
    assert sorted(Path(c["path"]).name for c in captures_of(queued_app, upload_id)) == [
        "0.jpg", "1.jpg", "2.jpg", "3.jpg"]


def test_uploads_whose_job_was_lost_are_queued_again(
        queued_app, queued_client, data_dir, redis_server, redis_conn):
    from datetime import timedelta

    from sqlalchemy import update

    from scanner_app.platform.clock import utcnow
    from scanner_app.uploads.recovery import recover_stuck_uploads

    body = post_files(queued_client, [("a.jpg", image_bytes(seed=1)),
                                      ("b.jpg", image_bytes(seed=2))]).get_json()
    ids = [u["id"] for u in body["uploads"]]
    settings = queued_app.config["SCANNER_SETTINGS"]
    with queued_app.app_context():
        assert recover_stuck_uploads(settings) == []  # too recent to be called stuck
        db.session.execute(update(Upload).values(created_at=utcnow() - timedelta(minutes=10)))
        db.session.commit()
        assert recover_stuck_uploads(settings) == []  # its job is still queued
        Queue("uploads", connection=redis_conn).empty()  # the job is lost
        assert recover_stuck_uploads(settings) == ids
        assert recover_stuck_uploads(settings) == []  # queued once, not twice

    run_worker(queued_app, data_dir, redis_server)
    expected = {"files_count": 2, "captures_count": 2, "valid_count": 2, "invalid_count": 0}
    assert counters(queued_app, body["session_id"]) == expected
    for upload_id in ids:
        answer = queued_client.get(f"/api/v1/uploads/{upload_id}").get_json()
        assert answer["upload"]["status"] == "done"


def test_worker_marks_uploads_of_a_killed_work_horse_failed_and_requeues_lost_ones(
        queued_app, queued_client, redis_conn):
    """The worker's own hooks: a killed uploads job fails its uploads (files kept), and its
    maintenance round queues again uploads whose job was lost."""
    import signal
    from datetime import timedelta

    from rq.job import Job
    from sqlalchemy import update

    from scanner_app.platform.clock import utcnow
    from scanner_app.runtime.worker import StationWorker
    from scanner_app.uploads.job import KILLED_SENTENCE

    first = post_files(queued_client, [("a.jpg", image_bytes(seed=3))]).get_json()
    second = post_files(queued_client, [("b.jpg", image_bytes(seed=4))]).get_json()
    killed_id, lost_id = first["uploads"][0]["id"], second["uploads"][0]["id"]
    worker = StationWorker(["uploads"], connection=redis_conn, app=queued_app)
    killed_job = next(job for job in Queue("uploads", connection=redis_conn).jobs
                      if job.args[0] == [killed_id])
    with queued_app.app_context():  # the horse was working on it (claims file by file)
        from scanner_app.uploads.claims import Claim, new_token

        assert Claim.take([killed_id], new_token(killed_job.id)).holds(killed_id)
    worker.handle_work_horse_killed(killed_job, 12345, signal.SIGKILL, None)
    answer = queued_client.get(f"/api/v1/uploads/{killed_id}").get_json()["upload"]
    answer = answer.get("upload", answer)
    assert (answer["status"], answer["error"]) == ("failed", KILLED_SENTENCE)

    Queue("uploads", connection=redis_conn).empty()  # the other upload's job is lost
    with queued_app.app_context():
        db.session.execute(update(Upload).values(created_at=utcnow() - timedelta(minutes=10)))
        db.session.commit()
    worker.run_maintenance_tasks()
    requeued = [Job.fetch(job_id, connection=redis_conn).args[0]
                for job_id in Queue("uploads", connection=redis_conn).job_ids]
    assert requeued == [[lost_id]]  # the failed one is not 'processing', so not requeued
