"""A session deleted while the files of a request arrive: after the request resolved it, before
its files are recorded. The answer is 404 with a sentence, nothing is kept or counted, and the
deleted session's directory does not come back."""

from __future__ import annotations

import pytest
from sqlalchemy import delete

from scanner_app.models import Capture, ScanSession, Upload
from scanner_app.platform.extensions import db
from scanner_app.uploads import service as upload_service
from tests.uploads.conftest import counters, error_of, session_ids
from tests.uploads.helpers import assert_written_only_inside, image_bytes, post_files, snapshot

FILES = [("a.jpg", image_bytes(seed=1)), ("b.jpg", image_bytes(seed=2))]


@pytest.fixture
def delete_after_resolving(monkeypatch):
    """The session is resolved, then deleted (through the API's own service) before the
    request records its files."""
    from scanner_app.sessions.service import delete_session

    real_resolve = upload_service.resolve_session
    resolved: list[int] = []

    def resolve_then_delete(session_id):
        resolved.append(real_resolve(session_id))
        delete_session(resolved[-1])
        return resolved[-1]

    monkeypatch.setattr(upload_service, "resolve_session", resolve_then_delete)
    return resolved


def assert_nothing_kept(app, data_dir, tmp_path, before, session_id: int) -> None:
    with app.app_context():
        assert db.session.query(Upload).count() == 0
        assert db.session.query(Capture).count() == 0
    assert not (data_dir / "sessions" / str(session_id)).exists()  # not brought back
    assert_written_only_inside(tmp_path, before, data_dir, None)


def test_session_deleted_before_the_files_are_recorded(app, client, data_dir, tmp_path,
                                                       delete_after_resolving):
    target = client.post("/api/v1/sessions",
                         json={"name": "Short-lived"}).get_json()["session"]["id"]
    assert (data_dir / "sessions" / str(target)).is_dir()
    before = snapshot(tmp_path)

    response = post_files(client, FILES, session_id=target)
    assert delete_after_resolving == [target]
    assert response.status_code == 404
    code, message = error_of(response)
    assert code == "not_found"
    assert message == (f"Session {target} was deleted while the files arrived, so they were "
                       "not kept. Pick another session and send them again.")
    assert session_ids(app) == []
    assert_nothing_kept(app, data_dir, tmp_path, before, target)


def test_session_deleted_unseen_by_the_lock_fails_on_its_foreign_key(
        app, client, data_dir, tmp_path, delete_after_resolving, monkeypatch):
    """Should the session row lock ever miss a delete, the database's foreign key still
    refuses the rows: same answer, nothing kept, no directory made for the gone session."""
    monkeypatch.setattr(upload_service, "_lock_session", lambda session_id: None)
    target = client.post("/api/v1/sessions",
                         json={"name": "Short-lived"}).get_json()["session"]["id"]
    before = snapshot(tmp_path)

    response = post_files(client, FILES, session_id=target)
    assert response.status_code == 404
    code, message = error_of(response)
    assert code == "not_found" and "was deleted while the files arrived" in message
    assert_nothing_kept(app, data_dir, tmp_path, before, target)


def test_files_already_moved_go_back_when_the_session_goes_mid_request(
        app, client, data_dir, tmp_path, monkeypatch):
    """The session goes after the first file was moved into it: that file leaves the session
    folder again, no row stays, and nothing is counted."""
    target = client.post("/api/v1/sessions", json={"name": "Kept"}).get_json()["session"]["id"]
    post_files(client, [("old.jpg", image_bytes(seed=9))], session_id=target)
    counted_before = counters(app, target)
    monkeypatch.setattr(upload_service, "_lock_session", lambda session_id: None)
    real_original_id = upload_service._original_id
    calls: list[int] = []

    def original_id(session_id, sha256):
        calls.append(session_id)
        if len(calls) == 2:  # after the first new file is in the session's folder
            db.session.execute(delete(ScanSession).where(ScanSession.id == session_id))
        return real_original_id(session_id, sha256)

    monkeypatch.setattr(upload_service, "_original_id", original_id)
    before = snapshot(tmp_path)
    response = post_files(client, FILES, session_id=target)
    assert response.status_code == 404 and error_of(response)[0] == "not_found"
    assert len(calls) == 2
    # All undone in one rollback (the delete above included, as it ran in that transaction).
    assert counters(app, target) == counted_before
    with app.app_context():
        assert db.session.query(Upload).count() == 1  # the earlier upload only
    uploads_root = data_dir / "sessions" / str(target) / "images" / "uploads"
    assert len(list(uploads_root.iterdir())) == 1
    assert_written_only_inside(tmp_path, before, data_dir, None)
