"""The same bad input has the same outcome whether the request processes it itself (the queue
is down) or a real `scanner worker` processes it from the uploads queue."""

from __future__ import annotations

from tests.uploads.bad_inputs import bad_batch, check_bad_batch
from tests.uploads.conftest import counters, run_worker
from tests.uploads.helpers import assert_written_only_inside, post_files, snapshot


def test_bad_input_processed_in_the_request(sqlite_app, sqlite_client, data_dir, tmp_path):
    before = snapshot(tmp_path)
    response = post_files(sqlite_client, bad_batch())
    assert response.status_code == 201
    body = response.get_json()
    check_bad_batch(sqlite_app, body["uploads"], body["session_id"], data_dir)
    assert_written_only_inside(tmp_path, before, data_dir, body["session_id"])


def test_bad_input_processed_by_a_real_worker(queued_app, queued_client, data_dir, tmp_path,
                                              redis_server):
    before = snapshot(tmp_path)
    response = post_files(queued_client, bad_batch())
    assert response.status_code == 201
    body = response.get_json()
    session_id = body["session_id"]
    assert all(u["status"] == "processing" for u in body["uploads"])  # queued, not done here
    assert counters(queued_app, session_id) == {
        "files_count": 7, "captures_count": 0, "valid_count": 0, "invalid_count": 0}

    run_worker(queued_app, data_dir, redis_server)
    uploads = []
    for sent in body["uploads"]:
        answer = queued_client.get(f"/api/v1/uploads/{sent['id']}")
        assert answer.status_code == 200
        uploads.append(answer.get_json()["upload"])
    check_bad_batch(queued_app, uploads, session_id, data_dir)
    assert_written_only_inside(tmp_path, before, data_dir, session_id)
