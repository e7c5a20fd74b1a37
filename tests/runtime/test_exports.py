"""Exports: the per-scan ZIP in exports/ and the session ZIP streamed by the API."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import pytest

from scanner_app.platform import zips as exports
from scanner_app.platform.storage import StorageManager, atomic_open, current_storage
from scanner_app.platform.zips import write_scan_export
from scanner_app.sessions.resolver import resolve_session
from scanner_app.sessions.service import create_manual_session
from tests.support import jpeg_bytes


def _scan_on_disk(store: StorageManager, session_id: int, scan_id: int, frames: int) -> dict:
    """Frames and metadata as the scan job leaves them, plus a half-written temp frame."""
    images = store.scan_images_dir(session_id, scan_id)
    images.mkdir(parents=True, exist_ok=True)
    expected = {}
    for index in range(frames):
        data = jpeg_bytes(seed=index)
        (images / f"frame-{index:03d}.jpg").write_bytes(data)
        expected[f"images/scans/{scan_id}/frame-{index:03d}.jpg"] = data
    (images / f".frame-{frames:03d}.jpg.x1y2.tmp").write_bytes(b"half a frame")
    metadata = store.scan_metadata_path(session_id, scan_id)
    metadata.parent.mkdir(parents=True, exist_ok=True)
    metadata.write_text(json.dumps({"scan": {"id": scan_id}, "frames": list(range(frames))}))
    expected[f"metadata/scans/{scan_id}.json"] = metadata.read_bytes()
    return expected


def test_scan_export_holds_frames_and_metadata_with_jpegs_stored(sqlite_app, data_dir):
    with sqlite_app.app_context():
        session_id = resolve_session(None)
        store = StorageManager(data_dir)
        expected = _scan_on_disk(store, session_id, 7, frames=4)
        _scan_on_disk(store, session_id, 8, frames=2)  # another scan: not in this export

        path = write_scan_export(session_id, 7)

    assert path == store.exports_dir(session_id) / "scan-7.zip"
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        assert sorted(archive.namelist()) == sorted(expected)
        for name, data in expected.items():
            assert archive.read(name) == data
            info = archive.getinfo(name)
            wanted = zipfile.ZIP_STORED if name.endswith(".jpg") else zipfile.ZIP_DEFLATED
            assert info.compress_type == wanted, name
    # Atomic write: nothing but the finished ZIP is left in exports/.
    assert [p.name for p in path.parent.iterdir()] == ["scan-7.zip"]


def test_scan_export_failing_half_way_leaves_no_file(sqlite_app, data_dir, monkeypatch):
    with sqlite_app.app_context():
        session_id = resolve_session(None)
        store = StorageManager(data_dir)
        _scan_on_disk(store, session_id, 3, frames=3)
        calls = {"n": 0}
        real_write = zipfile.ZipFile.write

        def failing_write(self, *args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 2:
                raise OSError(28, "No space left on device")
            return real_write(self, *args, **kwargs)

        monkeypatch.setattr(zipfile.ZipFile, "write", failing_write)
        with pytest.raises(OSError, match="No space left"):
            write_scan_export(session_id, 3)
    assert list(store.exports_dir(session_id).iterdir()) == []


def test_scan_export_never_brings_back_a_session_directory(sqlite_app, data_dir):
    """A late export for a session deleted (or merged away) meanwhile fails; it must not
    create sessions/<id>/exports/ again."""
    with sqlite_app.app_context():
        session_id = resolve_session(None)
        store = StorageManager(data_dir)
        _scan_on_disk(store, session_id, 4, frames=2)
        store.remove_session_dir(session_id)
        with pytest.raises(FileNotFoundError):
            write_scan_export(session_id, 4)
    assert not store.session_dir(session_id).exists()
    assert [p.name for p in store.sessions_root.iterdir()] == []


def test_scan_export_makes_a_missing_exports_folder_inside_its_session(sqlite_app, data_dir):
    with sqlite_app.app_context():
        session_id = resolve_session(None)
        store = StorageManager(data_dir)
        _scan_on_disk(store, session_id, 5, frames=1)
        store.exports_dir(session_id).rmdir()  # a session made before exports/ existed
        path = write_scan_export(session_id, 5)
    assert path == store.scan_export_path(session_id, 5) and zipfile.is_zipfile(path)


def test_atomic_open_shows_the_file_only_when_complete(tmp_path):
    target = tmp_path / "out.bin"
    with atomic_open(target) as handle:
        handle.write(b"first half ")
        assert not target.exists()
        assert [p.name for p in tmp_path.iterdir()][0].startswith(".out.bin.")
        handle.write(b"second half")
    assert target.read_bytes() == b"first half second half"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]

    with pytest.raises(RuntimeError), atomic_open(target) as handle:
        handle.write(b"never seen")
        raise RuntimeError("stopped half-way")
    assert target.read_bytes() == b"first half second half"  # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]

    with pytest.raises(FileNotFoundError), atomic_open(tmp_path / "missing" / "x.bin"):
        pass
    assert not (tmp_path / "missing").exists()  # it never makes folders


def _session_tree(store: StorageManager, session_id: int) -> dict[str, bytes]:
    root = store.ensure_session_dir(session_id)
    expected = {"metadata/session.json": (root / "metadata" / "session.json").read_bytes()}
    expected.update(_scan_on_disk(store, session_id, 11, frames=3))
    upload = store.upload_dir(session_id, 5)
    upload.mkdir(parents=True)
    (upload / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    (upload / "notes.txt").write_text("a text file " * 100)
    (upload / "archive.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    expected["images/uploads/5/photo.png"] = (upload / "photo.png").read_bytes()
    expected["images/uploads/5/notes.txt"] = (upload / "notes.txt").read_bytes()
    expected["images/uploads/5/archive.zip"] = (upload / "archive.zip").read_bytes()
    exported = store.exports_dir(session_id) / "scan-11.zip"
    exported.write_bytes(b"PK\x05\x06" + bytes(18))
    expected["exports/scan-11.zip"] = exported.read_bytes()
    (store.exports_dir(session_id) / ".scan-12.zip.abcd.tmp").write_bytes(b"half a zip")
    (store.exports_dir(session_id) / ".scan-13.zip.efgh.part").write_bytes(b"half a zip")
    return expected


def test_session_export_streams_the_session_directory_without_the_scan_zips(
        sqlite_client, sqlite_app, data_dir):
    with sqlite_app.app_context():
        session = create_manual_session("Trial ÄBC/123 — day 1", make_current=True)
        session_id = session.id
    expected = _session_tree(StorageManager(data_dir), session_id)
    del expected["exports/scan-11.zip"]  # the scan's frames are in the ZIP already
    (StorageManager(data_dir).exports_dir(session_id) / "notes.zip").write_bytes(b"other")
    expected["exports/notes.zip"] = b"other"  # other exports stay

    response = sqlite_client.get(f"/api/v1/sessions/{session_id}/export.zip")
    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="session-{session_id}-trial-abc-123-day-1.zip"'
    )
    body = response.get_data()
    assert int(response.headers["Content-Length"]) == len(body)  # announced before sending
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.testzip() is None
        assert sorted(archive.namelist()) == sorted(expected)  # temp files left out
        for name, data in expected.items():
            assert archive.read(name) == data, name
            assert archive.getinfo(name).compress_type == zipfile.ZIP_STORED, name


def test_session_export_reads_files_while_it_is_sent(sqlite_client, sqlite_app, data_dir):
    """The response starts before the files are read, and memory never holds a whole file:
    a frame's bytes changed after the first chunk was sent are what the archive carries."""
    with sqlite_app.app_context():
        session_id = resolve_session(None)
    store = StorageManager(data_dir)
    frames = store.scan_images_dir(session_id, 1)
    frames.mkdir(parents=True)
    big = {f"images/scans/1/big-{i}.jpg": os.urandom(300_000) for i in range(3)}
    for name, data in big.items():
        (store.session_dir(session_id) / name).write_bytes(data)

    response = sqlite_client.get(f"/api/v1/sessions/{session_id}/export.zip")
    announced = int(response.headers["Content-Length"])
    body = iter(response.response)
    first = next(body)
    assert 0 < len(first) < 300_000
    last = store.session_dir(session_id) / "images/scans/1/big-2.jpg"
    changed = os.urandom(300_000)  # same size, other bytes
    last.write_bytes(changed)
    chunks = [first, *body]
    response.close()
    data = b"".join(chunks)
    assert len(data) == announced
    assert max(map(len, chunks)) <= 64 * 1024 + 1024  # read in blocks, never a whole file
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read("images/scans/1/big-2.jpg") == changed
        assert archive.read("images/scans/1/big-0.jpg") == big["images/scans/1/big-0.jpg"]


def test_a_session_record_rewritten_during_the_download_keeps_the_length_true(
        sqlite_client, sqlite_app, data_dir):
    """session.json and the scans' frame lists are rewritten (with a new size) while scans and
    uploads run: they are read when the download starts, so Content-Length stays exact."""
    with sqlite_app.app_context():
        session_id = resolve_session(None)
    store = StorageManager(data_dir)
    record = store.session_dir(session_id) / "metadata" / "session.json"
    before = record.read_bytes()
    response = sqlite_client.get(f"/api/v1/sessions/{session_id}/export.zip")
    record.write_text(json.dumps({"rewritten": "x" * 5000}))
    data = response.get_data()
    assert len(data) == int(response.headers["Content-Length"])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read("metadata/session.json") == before


def test_export_of_an_unknown_session_is_404_with_the_error_body(sqlite_client):
    response = sqlite_client.get("/api/v1/sessions/424242/export.zip")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_export_needs_a_login_or_key(sqlite_app):
    with sqlite_app.app_context():
        session_id = resolve_session(None)
    response = sqlite_app.test_client().get(f"/api/v1/sessions/{session_id}/export.zip")
    assert response.status_code == 401


def test_filename_of_a_session_without_ascii_letters(sqlite_app):
    assert exports.session_export_filename(3, "日本") == "session-3.zip"
    assert exports.session_export_filename(3, "Session 2026-01-31") == (
        "session-3-session-2026-01-31.zip"
    )


def test_files_vanishing_before_the_export_starts_are_left_out(tmp_path):
    root = tmp_path / "s"
    (root / "images").mkdir(parents=True)
    (root / "images" / "a.jpg").write_bytes(b"a")
    gone = root / "images" / "b.jpg"
    gone.write_bytes(b"b")
    listed = list(exports.iter_tree_files(root))
    gone.unlink()
    archive = exports.ZipStream(sized=True)
    for path, name in listed:
        exports._add_file(archive, path, name)
    data = b"".join(archive)
    assert len(data) == len(archive)
    with zipfile.ZipFile(io.BytesIO(data)) as unpacked:
        assert unpacked.namelist() == ["images/a.jpg"]


def test_symlinks_in_a_session_are_not_followed(tmp_path):
    root = tmp_path / "s"
    root.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("not for export")
    (root / "link.txt").symlink_to(secret)
    (root / "real.txt").write_text("ok")
    assert [name for _path, name in exports.iter_tree_files(root)] == ["real.txt"]


def test_export_path_is_inside_the_session(sqlite_app, data_dir):
    with sqlite_app.app_context():
        session_id = resolve_session(None)
        path = current_storage().scan_export_path(session_id, 9)
    assert path == Path(data_dir) / "sessions" / str(session_id) / "exports" / "scan-9.zip"


def test_an_extracted_file_growing_during_the_download_is_sent_as_listed(
        sqlite_client, sqlite_app, data_dir):
    """Archive entries are written in place while an upload is processed: one that grows after
    the listing is sent at its listed size, so the announced length and the ZIP stay true."""
    with sqlite_app.app_context():
        session_id = resolve_session(None)
    extracted = StorageManager(data_dir).upload_dir(session_id, 5) / "photos"
    extracted.mkdir(parents=True)
    growing = extracted / "a.jpg"
    first_part = os.urandom(200_000)
    growing.write_bytes(first_part)
    response = sqlite_client.get(f"/api/v1/sessions/{session_id}/export.zip")
    with open(growing, "ab") as handle:
        handle.write(os.urandom(50_000))  # the extraction goes on
    data = response.get_data()
    assert len(data) == int(response.headers["Content-Length"])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        assert archive.read("images/uploads/5/photos/a.jpg") == first_part
