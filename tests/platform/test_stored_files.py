"""Stored files are never served inline unless the Capture row says "valid image" and the
bytes start like one: everything else downloads as application/octet-stream with nosniff and
a sandboxing CSP; nothing a session holds is cached publicly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from scanner_app.platform.web.security import FILE_CSP
from tests.support import dispose
from tests.web.conftest import add_capture, add_session, jpeg_bytes, make_web_app, sign_in

SCRIPT = b"<!doctype html><script>fetch('/api/v1/sessions/1', {method: 'DELETE'})</script>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@pytest.fixture
def app(data_dir) -> Iterator[Flask]:
    app = make_web_app(data_dir)
    yield app
    dispose(app)


def _is_download(answer, name: str) -> None:
    assert answer.status_code == 200
    assert answer.mimetype == "application/octet-stream"
    assert answer.headers["Content-Disposition"].startswith("attachment")
    assert name in answer.headers["Content-Disposition"]
    _is_locked_down(answer)


def _is_locked_down(answer) -> None:
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Content-Security-Policy"] == FILE_CSP
    assert "public" not in answer.headers["Cache-Control"]
    assert "private" in answer.headers["Cache-Control"]


def test_files_that_are_not_valid_images_download(app):
    person = sign_in(app)
    session = add_session(app, "Uploads")
    page = add_capture(app, session, "images/uploads/1/page.html", valid=False, data=SCRIPT)
    add_capture(app, session, "images/uploads/2/vector.svg", valid=False, data=SVG)
    # A row that claims "valid" for bytes that are not an image (a renamed file): no trust.
    add_capture(app, session, "images/uploads/3/photo.jpg", valid=True, data=SCRIPT)
    for relpath in ("images/uploads/1/page.html", "images/uploads/2/vector.svg",
                    "images/uploads/3/photo.jpg", "metadata/session.json"):
        answer = person.get(f"/sessions/{session}/files/{relpath}")
        _is_download(answer, relpath.rsplit("/", 1)[-1])
    # The thumbnail route's ?src= fallback serves no invalid capture, whatever it names.
    for src in ("images/uploads/1/page.html", "images/uploads/2/vector.svg"):
        answer = person.get(f"/sessions/{session}/thumbnails/{page}.jpg?src={src}")
        assert answer.status_code == 404
        assert b"alert(1)" not in answer.data and b"method: 'DELETE'" not in answer.data


def test_valid_images_show_inline_with_their_image_type(app):
    person = sign_in(app)
    session = add_session(app, "Scans")
    image = jpeg_bytes()
    capture = add_capture(app, session, "images/scans/1/f0.jpg", data=image)
    answer = person.get(f"/sessions/{session}/files/images/scans/1/f0.jpg")
    assert answer.status_code == 200 and answer.data == image
    assert answer.mimetype == "image/jpeg"
    assert "attachment" not in answer.headers.get("Content-Disposition", "")
    _is_locked_down(answer)
    thumb = person.get(f"/sessions/{session}/thumbnails/{capture}.jpg?src=images/scans/1/f0.jpg")
    assert thumb.mimetype == "image/jpeg" and thumb.data == image
    _is_locked_down(thumb)
    # The same valid image named as a page is still shown only as an image.
    renamed = add_capture(app, session, "images/uploads/4/photo.html", data=image)
    answer = person.get(f"/sessions/{session}/files/images/uploads/4/photo.html")
    assert renamed and answer.mimetype == "image/jpeg"
