"""Thumbnails of every kind of valid image, and the small service functions others call."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
from PIL import Image

from scanner_app.platform.storage import StorageManager
from scanner_app.platform.thumbnails import make_thumbnail, thumbnail_path
from tests.conftest import build_app
from tests.support import api_client
from tests.uploads.helpers import image_bytes, post_files


def save(path: Path, img: Image.Image, fmt: str, **options) -> Path:
    img.save(path, fmt, **options)
    return path


@pytest.mark.parametrize("mode,fmt", [
    ("RGB", "JPEG"), ("L", "JPEG"), ("CMYK", "JPEG"), ("RGBA", "PNG"), ("LA", "PNG"),
    ("P", "PNG"), ("I;16", "PNG"), ("I;16", "TIFF"), ("F", "TIFF"), ("1", "TIFF"),
])
def test_thumbnails_of_every_image_mode(tmp_path, mode, fmt):
    src = save(tmp_path / f"src.{fmt.lower()}", Image.new(mode, (1600, 900)), fmt)
    dest = tmp_path / "thumbs" / "7.jpg"
    make_thumbnail(src, dest)
    with Image.open(dest) as thumb:
        assert thumb.format == "JPEG" and thumb.size == (320, 180)
    assert [p.name for p in dest.parent.iterdir()] == ["7.jpg"]  # no temp file left


def test_thumbnail_is_upright_and_sized(tmp_path):
    img = Image.new("RGB", (400, 100), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees to show
    src = save(tmp_path / "rotated.jpg", img, "JPEG", exif=exif)
    dest = tmp_path / "t.jpg"
    make_thumbnail(src, dest, size=80)
    with Image.open(dest) as thumb:
        assert thumb.size == (20, 80)


def test_unreadable_source_raises_and_writes_nothing(tmp_path):
    src = tmp_path / "bad.jpg"
    src.write_bytes(b"not an image")
    with pytest.raises(Exception):  # noqa: B017 - any Pillow error; the point is no file
        make_thumbnail(src, tmp_path / "out" / "1.jpg")
    assert not (tmp_path / "out" / "1.jpg").exists()


def test_thumbnail_path_is_in_the_session_metadata(tmp_path):
    store = StorageManager(tmp_path)
    expected = tmp_path / "sessions" / "3" / "metadata" / "thumbnails" / "42.jpg"
    assert store.thumbnail_path(3, 42) == expected
    assert thumbnail_path(store, 3, 42) == expected  # the wrapper scan_job.py imports


def test_a_thumbnail_never_brings_back_a_deleted_session_directory(tmp_path):
    store = StorageManager(tmp_path)
    src = save(tmp_path / "src.png", Image.new("RGB", (40, 30)), "PNG")
    store.ensure_session_dir(5)
    (store.session_dir(5) / "metadata" / "thumbnails").rmdir()  # an older session layout
    make_thumbnail(src, store.thumbnail_path(5, 1))  # its own folder is made
    assert store.thumbnail_path(5, 1).is_file()

    store.remove_session_dir(5)  # deleted meanwhile
    with pytest.raises(FileNotFoundError):
        make_thumbnail(src, store.thumbnail_path(5, 2))
    assert not store.session_dir(5).exists()


def test_list_and_get_uploads(sqlite_app, sqlite_client):
    from scanner_app.platform.errors import NotFound
    from scanner_app.uploads.service import get_upload, list_uploads

    body = post_files(sqlite_client, [("a.jpg", image_bytes(seed=1)),
                                      ("b.jpg", image_bytes(seed=2))]).get_json()
    with sqlite_app.app_context():
        listed = list_uploads(body["session_id"])
        assert [u.filename for u in listed] == ["a.jpg", "b.jpg"]
        assert get_upload(listed[1].id).filename == "b.jpg"
        with pytest.raises(NotFound):
            get_upload(999)
        assert list_uploads(999) == []


def test_staging_left_by_a_crash_is_swept(data_dir):
    stale = data_dir / "incoming" / "0123abcd"
    stale.mkdir(parents=True)
    (stale / "00000").write_bytes(b"half a file")
    old = time.time() - 3 * 24 * 3600
    os.utime(stale, (old, old))
    fresh = data_dir / "incoming" / "fresh"  # a request in progress right now
    fresh.mkdir()

    app = build_app(data_dir)
    response = api_client(app).post(
        "/api/v1/uploads",
        data={"files": (io.BytesIO(image_bytes()), "a.jpg")}, content_type="multipart/form-data")
    assert response.status_code == 201
    assert not stale.exists() and fresh.exists()
