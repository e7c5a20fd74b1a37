"""Issue 10, finding 9: very long archive paths. An entry whose path is too long or too deep is
skipped at extraction with a note (never written, never counted); the doctor never crashes on
what it finds on disk, even a path no tool can open."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from scanner_app.models import Capture
from scanner_app.platform.extensions import db
from scanner_app.uploads.files.names import (
    MAX_ARCHIVE_DEPTH,
    MAX_ARCHIVE_PATH_BYTES,
    UnsafePath,
    archive_member_parts,
)
from tests.support import run_cli
from tests.uploads.helpers import image_bytes, post_files, zip_with_raw_names

# 30 folders of 199 characters: about 6,000 characters, as in the issue.
LONG = "/".join(f"{i:02d}" + "d" * 197 for i in range(30)) + "/deep.jpg"


def _upload(response) -> dict:
    body = response.get_json()
    return body["uploads"][0], body["session_id"]


def test_paths_too_long_or_too_deep_are_refused_with_a_reason():
    assert len(LONG) > 6000
    with pytest.raises(UnsafePath, match="longer than 1024 bytes"):
        archive_member_parts(LONG)
    with pytest.raises(UnsafePath, match=f"more than {MAX_ARCHIVE_DEPTH} folders deep"):
        archive_member_parts("a/" * (MAX_ARCHIVE_DEPTH + 1) + "x.jpg")
    # Right at the limits: kept.
    assert len(archive_member_parts("a/" * MAX_ARCHIVE_DEPTH + "x.jpg")) == MAX_ARCHIVE_DEPTH + 1
    five = "/".join(["e" * 200] * 5)  # 1004 bytes with the separators
    at_limit = five + "/" + "f" * (MAX_ARCHIVE_PATH_BYTES - len(five) - 5) + ".jpg"
    assert len(at_limit.encode()) == MAX_ARCHIVE_PATH_BYTES
    assert archive_member_parts(at_limit)[-1].endswith(".jpg")
    # Multi-byte characters count in bytes.
    with pytest.raises(UnsafePath):
        archive_member_parts("/".join(["é" * 100] * 6) + "/x.jpg")


def test_an_archive_with_a_6000_character_path_is_extracted_without_it(sqlite_client,
                                                                      data_dir):
    archive = zip_with_raw_names([(LONG, image_bytes(seed=7)), ("ok/fine.jpg",
                                                                image_bytes(seed=8))])
    upload, session_id = _upload(post_files(sqlite_client, [("long.zip", archive)]))
    assert upload["status"] == "done" and upload["error"] is None
    assert (upload["captures_count"], upload["valid_count"]) == (1, 1)
    note = upload["note"]
    assert note.startswith("1 entry was not extracted: '00ddd")
    assert "(its path is longer than 1024 bytes)" in note and len(note) < 300
    session_dir = data_dir / "sessions" / str(session_id)
    written = [p for p in session_dir.rglob("*") if p.is_file()]
    assert not any("deep.jpg" in p.name for p in written)
    assert max(len(str(p.relative_to(session_dir))) for p in written) < 400

    report = run_cli(data_dir, "doctor")
    assert report.returncode == 0, report.stdout + report.stderr
    assert "Everything is in order" in report.stdout


def test_the_doctor_reports_a_path_it_cannot_open_instead_of_crashing(sqlite_app,
                                                                     sqlite_client, data_dir):
    """What a station that extracted such a path before this fix has in its database."""
    upload, session_id = _upload(post_files(sqlite_client, [("a.jpg", image_bytes(seed=9))]))
    with sqlite_app.app_context():
        capture = db.session.scalars(select(Capture).where(
            Capture.upload_id == upload["id"])).one()
        capture.path = f"images/uploads/{upload['id']}/long/{LONG}"
        db.session.commit()

    report = run_cli(data_dir, "doctor")
    assert "Traceback" not in report.stderr, report.stderr
    assert report.returncode == 1
    lines = [line for line in report.stdout.splitlines() if "could not be checked" in line]
    assert len(lines) == 1, report.stdout
    assert lines[0].lstrip().startswith("PROBLEM  The file ")
    assert "File name too long" in lines[0] and len(lines[0]) < 400
    assert report.stdout.rstrip().endswith("attention. Run 'scanner doctor --repair' to fix "
                                           "what can be fixed safely.")
