"""metadata/session.json follows the counters uploads change (CONTRACT "On disk": the session
record, rewritten atomically), in the request and in a real worker, and export.zip ships the
fresh record. A late refresh never brings back the directory of a deleted session."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from scanner_app.models.session import COUNTERS
from tests.uploads.conftest import run_worker
from tests.uploads.helpers import image_bytes, post_files, zip_bytes


def record_on_disk(data_dir: Path, session_id: int) -> dict:
    path = data_dir / "sessions" / str(session_id) / "metadata" / "session.json"
    return json.loads(path.read_text())


def api_counters(client, session_id: int) -> dict[str, int]:
    session = client.get(f"/api/v1/sessions/{session_id}").get_json()["session"]
    return {name: session[name] for name in COUNTERS}


def disk_counters(data_dir: Path, session_id: int) -> dict[str, int]:
    record = record_on_disk(data_dir, session_id)
    return {name: record[name] for name in COUNTERS}


def test_record_follows_uploads_processed_in_the_request(app, client, data_dir):
    # No Redis configured: processed in the request, so the answer is final.
    archive = zip_bytes({"a/1.jpg": image_bytes(seed=1), "a/2.png": image_bytes("PNG", seed=2),
                         "a/3.jpg": image_bytes(seed=3)[:100]})
    body = post_files(client, [("set.zip", archive), ("x.jpg", image_bytes(seed=4)),
                               ("notes.txt", b"not an image")]).get_json()
    session_id = body["session_id"]
    # 1.jpg, 2.png and x.jpg valid; the cut-off 3.jpg and notes.txt invalid.
    expected = {"files_count": 3, "captures_count": 5, "valid_count": 3, "invalid_count": 2,
                "scans_count": 0}
    assert api_counters(client, session_id) == expected
    assert disk_counters(data_dir, session_id) == expected

    # A request of duplicates only changes no counter; the record still agrees.
    post_files(client, [("again.jpg", image_bytes(seed=4))])
    assert disk_counters(data_dir, session_id) == api_counters(client, session_id) == expected

    # export.zip ships the fresh record, not the one written when the session was made.
    export = client.get(f"/api/v1/sessions/{session_id}/export.zip")
    assert export.status_code == 200
    with zipfile.ZipFile(io.BytesIO(export.data)) as archive_out:
        name = next(n for n in archive_out.namelist() if n.endswith("metadata/session.json"))
        shipped = json.loads(archive_out.read(name))
    assert {n: shipped[n] for n in COUNTERS} == expected


def test_record_follows_uploads_processed_by_a_worker(
        queued_app, queued_client, data_dir, redis_server):
    body = post_files(queued_client, [("a.jpg", image_bytes(seed=1)),
                                      ("b.txt", b"not an image")]).get_json()
    session_id = body["session_id"]
    # Counted on arrival, and written so at once (before any processing).
    on_arrival = disk_counters(data_dir, session_id)
    assert on_arrival["files_count"] == 2 and on_arrival["captures_count"] == 0
    assert on_arrival == api_counters(queued_client, session_id)

    run_worker(queued_app, data_dir, redis_server)
    expected = {"files_count": 2, "captures_count": 2, "valid_count": 1, "invalid_count": 1,
                "scans_count": 0}
    assert api_counters(queued_client, session_id) == expected
    assert disk_counters(data_dir, session_id) == expected


def test_worker_refreshes_the_session_an_upload_was_merged_into(
        queued_app, queued_client, data_dir, redis_server):
    body = post_files(queued_client, [("a.jpg", image_bytes(seed=5))]).get_json()
    source = body["session_id"]
    target = queued_client.post("/api/v1/sessions",
                                json={"name": "Target", "make_current": False}
                                ).get_json()["session"]["id"]
    assert queued_client.post(f"/api/v1/sessions/{source}/merge",
                              json={"into": target}).status_code == 200

    run_worker(queued_app, data_dir, redis_server)
    assert api_counters(queued_client, target)["captures_count"] == 1
    assert disk_counters(data_dir, target) == api_counters(queued_client, target)
    assert not (data_dir / "sessions" / str(source)).exists()  # never brought back
