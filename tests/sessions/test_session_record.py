"""metadata/session.json has one writer (scanner_app.sessions.record): it writes once after a
commit from the committed row, nothing after a rollback, and never makes a deleted session's
folder again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from scanner_app.platform.extensions import db
from scanner_app.platform.storage import StorageManager
from scanner_app.sessions.record import write_records
from tests.uploads.helpers import image_bytes, post_files


def disk_counters(data_dir: Path, session_id: int) -> dict[str, int]:
    path = data_dir / "sessions" / str(session_id) / "metadata" / "session.json"
    return json.loads(path.read_text())


def test_a_late_write_never_recreates_a_deleted_session(app, client, data_dir):
    session_id = post_files(client, [("a.jpg", image_bytes(seed=6))]).get_json()["session_id"]
    storage = StorageManager(data_dir)
    with app.app_context():
        assert write_records([session_id]) == 1  # while it exists

    assert client.delete(f"/api/v1/sessions/{session_id}").status_code == 204
    assert not storage.session_dir(session_id).exists()
    with app.app_context():
        assert write_records([session_id]) == 0  # the row is gone
        assert write_records({session_id: True}) == 0  # even when asked to make the folder
    assert not storage.session_dir(session_id).exists()
    assert not list(storage.sessions_root.glob(f"{session_id}*"))


def test_a_write_needs_the_metadata_folder(app, client, data_dir):
    """A session's folder half-way through being moved aside gets no record (and no
    metadata folder) unless the writer was asked to make it."""
    session_id = client.post("/api/v1/sessions", json={"name": "Aside"}).get_json()["session"]["id"]
    storage = StorageManager(data_dir)
    record = storage.session_record_path(session_id)
    shutil.rmtree(record.parent)
    with app.app_context():
        assert write_records([session_id]) == 0
        assert not record.parent.exists()
        assert write_records({session_id: True}) == 1
    assert json.loads(record.read_text())["name"] == "Aside"


def test_one_write_per_commit_and_none_after_a_rollback(app, client, data_dir, monkeypatch):
    """Counters marked dirty twice in one transaction are written once, after the commit;
    a rolled-back change writes nothing."""
    from scanner_app.sessions import record as session_records
    from scanner_app.sessions.counters import bump_session_counters

    session_id = client.post("/api/v1/sessions",

                             json={"name": "Counted"}).get_json()["session"]["id"]
    writes: list[dict] = []
    real = session_records.write_records
    monkeypatch.setattr(session_records, "write_records",
                        lambda records: writes.append(dict(records)) or real(records))
    with app.app_context():
        bump_session_counters(session_id, files_count=1)
        bump_session_counters(session_id, files_count=1)
        assert writes == []  # nothing before the commit
        db.session.commit()
        assert writes == [{session_id: False}]
        bump_session_counters(session_id, files_count=5)
        db.session.rollback()
    assert writes == [{session_id: False}]
    assert disk_counters(data_dir, session_id)["files_count"] == 2
