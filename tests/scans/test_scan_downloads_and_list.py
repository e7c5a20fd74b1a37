"""GET /api/v1/scans lists every scan newest first, a page at a time, or one session's;
GET /api/v1/scans/<id>/export.zip serves the scan's written ZIP, or streams its frames before
that ZIP exists; both with Content-Length equal to the bytes sent."""

from __future__ import annotations

import io
import json
import zipfile

from scanner_app.platform.storage import StorageManager
from scanner_app.platform.zips import write_scan_export
from scanner_app.sessions.resolver import resolve_session
from tests.support import jpeg_bytes
from tests.web.conftest import add_scan, add_session


def _frames(data_dir, session_id: int, scan_id: int, count: int) -> dict[str, bytes]:
    store = StorageManager(data_dir)
    images = store.scan_images_dir(session_id, scan_id)
    images.mkdir(parents=True, exist_ok=True)
    expected = {}
    for index in range(count):
        data = jpeg_bytes(seed=index)
        (images / f"frame-{index:03d}.jpg").write_bytes(data)
        expected[f"images/scans/{scan_id}/frame-{index:03d}.jpg"] = data
    metadata = store.scan_metadata_path(session_id, scan_id)
    metadata.parent.mkdir(parents=True, exist_ok=True)
    metadata.write_text(json.dumps({"frames": list(range(count))}))
    expected[f"metadata/scans/{scan_id}.json"] = metadata.read_bytes()
    return expected


def _unzipped(response) -> dict[str, bytes]:
    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    body = response.get_data()
    assert int(response.headers["Content-Length"]) == len(body)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def test_a_scan_downloads_before_and_after_its_zip_is_written(sqlite_app, sqlite_client,
                                                              data_dir):
    with sqlite_app.app_context():
        session_id = resolve_session(None)
    scan_id = add_scan(sqlite_app, session_id, "running", captured=3)
    other = add_scan(sqlite_app, session_id, "completed")
    expected = _frames(data_dir, session_id, scan_id, 3)
    _frames(data_dir, session_id, other, 2)  # another scan's frames stay out

    streamed = sqlite_client.get(f"/api/v1/scans/{scan_id}/export.zip")
    assert streamed.headers["Content-Disposition"] == f'attachment; filename="scan-{scan_id}.zip"'
    assert _unzipped(streamed) == expected

    with sqlite_app.app_context():
        written = write_scan_export(session_id, scan_id)
    served = sqlite_client.get(f"/api/v1/scans/{scan_id}/export.zip")
    assert served.get_data() == written.read_bytes()  # the written file itself
    assert _unzipped(served) == expected


def test_download_of_an_unknown_scan_is_404_with_the_error_body(sqlite_client):
    response = sqlite_client.get("/api/v1/scans/424242/export.zip")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_scans_of_every_session_newest_first_a_page_at_a_time(sqlite_app, sqlite_client):
    first = add_session(sqlite_app, "First")
    second = add_session(sqlite_app, "Second")
    made = [add_scan(sqlite_app, session_id, "completed")
            for session_id in (first, second, first, second, first)]

    everything = sqlite_client.get("/api/v1/scans").get_json()
    assert [s["id"] for s in everything["scans"]] == made[::-1]
    assert (everything["page"], everything["pages"], everything["total"]) == (1, 1, 5)
    assert everything["active"] is None

    page = sqlite_client.get("/api/v1/scans?per_page=2&page=2").get_json()
    assert [s["id"] for s in page["scans"]] == [made[2], made[1]]
    assert (page["page"], page["pages"], page["per_page"], page["total"]) == (2, 3, 2, 5)
    past_the_end = sqlite_client.get("/api/v1/scans?per_page=2&page=9").get_json()
    assert past_the_end["page"] == 3 and [s["id"] for s in past_the_end["scans"]] == [made[0]]

    of_first = sqlite_client.get(f"/api/v1/scans?session_id={first}").get_json()
    assert [s["id"] for s in of_first["scans"]] == [made[4], made[2], made[0]]
    assert of_first["total"] == 3


def test_scan_list_refuses_what_is_not_a_page_or_a_session(sqlite_client):
    for query in ("session_id=abc", "session_id=１", "page=0", "page=-1", "per_page=x"):
        response = sqlite_client.get(f"/api/v1/scans?{query}")
        assert response.status_code == 400, query
        assert response.get_json()["error"]["message"].endswith(".")
    assert sqlite_client.get("/api/v1/scans?session_id=99999").status_code == 404
