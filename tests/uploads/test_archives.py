"""ZIP archives: extracted safely into the upload's folder, each image a capture; hostile
entries skipped, bombs refused, nested archives kept but not extracted."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from tests.uploads.conftest import captures_of, counted, counters
from tests.uploads.helpers import (
    assert_written_only_inside,
    forge_declared_size,
    image_bytes,
    post_files,
    snapshot,
    zip_bytes,
    zip_with_raw_names,
    zip_with_symlink,
)


def upload_root(data_dir: Path, body: dict, index: int = 0) -> Path:
    upload = body["uploads"][index]
    return (data_dir / "sessions" / str(body["session_id"]) / "images" / "uploads"
            / str(upload["id"]))


def only_upload(body: dict) -> dict:
    assert len(body["uploads"]) == 1
    return body["uploads"][0]


def test_archive_images_become_captures_and_other_files_are_kept(sqlite_app, sqlite_client,
                                                                 data_dir, tmp_path):
    before = snapshot(tmp_path)
    archive = zip_bytes({
        "scan/frames/000.jpg": image_bytes(seed=1),
        "scan/frames/001.png": image_bytes("PNG", seed=2),
        "scan/frames/002.tif": image_bytes("TIFF", seed=3),
        "scan/frames/003.jpg": image_bytes(seed=4)[:200],  # cut off
        "scan/metadata/session.json": b'{"id": 1}',
        "readme.txt": b"hello",
        "__MACOSX/scan/._000.jpg": b"\x00\x05\x16\x07",
        "scan/": b"",
    })
    response = post_files(sqlite_client, [("earlier scan.zip", archive)])
    assert response.status_code == 201
    body = response.get_json()
    upload = only_upload(body)
    assert upload["status"] == "done"
    assert (upload["captures_count"], upload["valid_count"], upload["invalid_count"]) == (6, 3, 3)
    # Every file inside is judged as if it had been sent alone; the error names the invalid
    # ones with their reasons (paths as in the archive), the upload is still done.
    not_an_image = "It is neither a JPEG, PNG or TIFF image nor a ZIP archive."
    assert upload["error"] == (
        "3 of 6 files are not valid images. 'scan/frames/003.jpg': The image is cut off: the "
        "file ends before the picture does. Copy or export it again. 'scan/metadata/"
        f"session.json': {not_an_image} 'readme.txt': {not_an_image}")
    assert upload["note"] is None

    root = upload_root(data_dir, body)
    assert (root / "earlier scan.zip").read_bytes() == archive  # the archive itself is kept
    extracted = root / "earlier scan"
    assert (extracted / "scan" / "frames" / "000.jpg").read_bytes() == image_bytes(seed=1)
    assert (extracted / "scan" / "metadata" / "session.json").exists()
    assert (extracted / "readme.txt").exists()
    assert not (extracted / "__MACOSX").exists()

    paths = {c["path"]: c for c in captures_of(sqlite_app, upload["id"])}
    prefix = f"images/uploads/{upload['id']}/earlier scan/scan/frames/"
    top = f"images/uploads/{upload['id']}/earlier scan/"
    assert sorted(paths) == sorted([prefix + n for n in ("000.jpg", "001.png", "002.tif",
                                                         "003.jpg")]
                                   + [top + "readme.txt", top + "scan/metadata/session.json"])
    assert paths[top + "readme.txt"]["reason"] == not_an_image  # as if sent alone

    # An archive is one file; the files inside are the captures (macOS clutter is not).
    expected = {"files_count": 1, "captures_count": 6, "valid_count": 3, "invalid_count": 3}
    assert counters(sqlite_app, body["session_id"]) == expected == counted(sqlite_app,
                                                                           body["session_id"])
    thumbs = data_dir / "sessions" / str(body["session_id"]) / "metadata" / "thumbnails"
    assert len(list(thumbs.iterdir())) == 3
    assert_written_only_inside(tmp_path, before, data_dir, body["session_id"])


def test_traversal_absolute_drive_and_symlink_entries_are_not_extracted(
        sqlite_app, sqlite_client, data_dir, tmp_path):
    before = snapshot(tmp_path)
    hostile = zip_with_raw_names([
        ("../../../../escaped.jpg", image_bytes(seed=1)),
        ("/tmp/absolute.jpg", image_bytes(seed=2)),
        ("C:/Windows/drive.jpg", image_bytes(seed=3)),
        ("ok/../../sneaky.jpg", image_bytes(seed=4)),
        ("fine/good.jpg", image_bytes(seed=5)),
    ])
    linked = zip_with_symlink("link.jpg", "/etc/passwd", extra={"real.jpg": image_bytes(seed=6)})
    body = post_files(sqlite_client, [("hostile.zip", hostile), ("links.zip", linked)]).get_json()
    hostile_upload, link_upload = body["uploads"]

    assert hostile_upload["status"] == "done"
    assert hostile_upload["valid_count"] == 1 and hostile_upload["captures_count"] == 1
    assert hostile_upload["error"] is None and link_upload["error"] is None
    note = hostile_upload["note"]
    assert note.startswith("4 entries were not extracted:")
    assert "'../../../../escaped.jpg' (it points outside the archive's folder)" in note
    assert "'/tmp/absolute.jpg' (it is an absolute path)" in note
    assert "'C:/Windows/drive.jpg' (it names a drive)" in note

    assert link_upload["valid_count"] == 1 and link_upload["captures_count"] == 1
    assert "'link.jpg' (it is a symbolic link)" in link_upload["note"]
    link_root = upload_root(data_dir, body, 1) / "links"
    assert sorted(p.name for p in link_root.iterdir()) == ["real.jpg"]

    assert not list(tmp_path.rglob("escaped.jpg"))
    assert not list(tmp_path.rglob("sneaky.jpg"))
    assert not Path("/tmp/absolute.jpg").exists()
    assert counters(sqlite_app, body["session_id"]) == {
        "files_count": 2, "captures_count": 2, "valid_count": 2, "invalid_count": 0}
    assert_written_only_inside(tmp_path, before, data_dir, body["session_id"])


def test_too_many_entries_is_refused_whole(sqlite_app, sqlite_client, data_dir, tmp_path):
    before = snapshot(tmp_path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for i in range(5001):
            archive.writestr(f"e{i}.txt", b"")
    body = post_files(sqlite_client, [("many.zip", buffer.getvalue())]).get_json()
    upload = only_upload(body)
    capture = captures_of(sqlite_app, upload["id"])
    assert len(capture) == 1 and capture[0]["valid"] is False
    assert capture[0]["reason"] == ("The ZIP archive has 5001 entries; at most 5000 are "
                                    "extracted. Split it into smaller archives.")
    assert capture[0]["path"] == f"images/uploads/{upload['id']}/many.zip"
    assert sorted(p.name for p in upload_root(data_dir, body).iterdir()) == ["many.zip"]
    assert counters(sqlite_app, body["session_id"]) == {
        "files_count": 1, "captures_count": 1, "valid_count": 0, "invalid_count": 1}
    assert_written_only_inside(tmp_path, before, data_dir, body["session_id"])


def test_declared_size_over_the_cap_is_refused_whole(sqlite_app, sqlite_client, data_dir, tmp_path):
    before = snapshot(tmp_path)
    small = zip_bytes({"big.tif": b"\x00" * 1000, "ok.jpg": image_bytes()})
    bomb = forge_declared_size(small, "big.tif", 3 * 1024**3)  # claims 3 GiB
    body = post_files(sqlite_client, [("bomb.zip", bomb)]).get_json()
    capture = captures_of(sqlite_app, only_upload(body)["id"])
    assert len(capture) == 1 and capture[0]["valid"] is False
    assert "would unpack to 3072 MB; at most 2048 MB are extracted" in capture[0]["reason"]
    assert only_upload(body)["status"] == "done"
    assert sorted(p.name for p in upload_root(data_dir, body).iterdir()) == ["bomb.zip"]
    expected = {"files_count": 1, "captures_count": 1, "valid_count": 0, "invalid_count": 1}
    assert counters(sqlite_app, body["session_id"]) == expected == counted(sqlite_app,
                                                                           body["session_id"])
    assert_written_only_inside(tmp_path, before, data_dir, body["session_id"])


def test_compression_ratio_bomb_is_refused_whole(sqlite_app, sqlite_client, data_dir, tmp_path):
    before = snapshot(tmp_path)
    bomb = zip_bytes({"zeros.tif": b"\x00" * (20 * 1024 * 1024), "ok.jpg": image_bytes()})
    assert len(bomb) < 100_000
    body = post_files(sqlite_client, [("ratio.zip", bomb)]).get_json()
    capture = captures_of(sqlite_app, only_upload(body)["id"])
    assert len(capture) == 1 and capture[0]["valid"] is False
    assert "how ZIP bombs look" in capture[0]["reason"]
    assert sorted(p.name for p in upload_root(data_dir, body).iterdir()) == ["ratio.zip"]
    expected = {"files_count": 1, "captures_count": 1, "valid_count": 0, "invalid_count": 1}
    assert counters(sqlite_app, body["session_id"]) == expected == counted(sqlite_app,
                                                                           body["session_id"])
    assert_written_only_inside(tmp_path, before, data_dir, body["session_id"])


def test_nested_archives_are_kept_not_extracted_and_counted_invalid(sqlite_app, sqlite_client,
                                                                    data_dir, tmp_path):
    before = snapshot(tmp_path)
    inner = zip_bytes({"deep.jpg": image_bytes(seed=9)})
    outer = zip_bytes({"inner.zip": inner, "renamed.dat": inner, "photo.jpg": image_bytes()})
    body = post_files(sqlite_client, [("outer.zip", outer)]).get_json()
    upload = only_upload(body)
    reasons = {Path(c["path"]).name: c["reason"] for c in captures_of(sqlite_app, upload["id"])}
    assert reasons["photo.jpg"] is None
    for name in ("inner.zip", "renamed.dat"):  # by name and by content
        assert reasons[name] == ("It is an archive inside the archive; the station does not "
                                 "unpack those. Upload it on its own.")
    extracted = upload_root(data_dir, body) / "outer"
    assert (extracted / "inner.zip").read_bytes() == inner
    assert not list(extracted.rglob("deep.jpg"))
    assert counters(sqlite_app, body["session_id"]) == {
        "files_count": 1, "captures_count": 3, "valid_count": 1, "invalid_count": 2}
    assert_written_only_inside(tmp_path, before, data_dir, body["session_id"])


def test_damaged_and_imageless_archives(sqlite_app, sqlite_client, data_dir, tmp_path):
    before = snapshot(tmp_path)
    good = zip_bytes({"a.jpg": image_bytes(seed=1), "b.jpg": image_bytes(seed=2)})
    # Flip bytes inside the first entry's compressed data: its CRC no longer matches.
    corrupt = bytearray(good)
    start = 30 + len("a.jpg") + 10
    corrupt[start:start + 20] = bytes(20)
    truncated = good[: len(good) // 2]  # the central directory is gone: not a ZIP any more
    docs = zip_bytes({"notes.txt": b"a", "data.csv": b"1,2"})
    files = [("crc.zip", bytes(corrupt)), ("cut.zip", truncated), ("docs.zip", docs),
             ("old.7z", b"7z\xbc\xaf\x27\x1c" + b"\x00" * 30)]
    body = post_files(sqlite_client, files).get_json()
    crc, cut, no_images, seven = body["uploads"]

    crc_captures = {Path(c["path"]).name: c for c in captures_of(sqlite_app, crc["id"])}
    assert crc_captures["b.jpg"]["valid"] is True
    assert crc_captures["a.jpg"]["valid"] is False
    assert "damaged" in crc_captures["a.jpg"]["reason"]

    assert captures_of(sqlite_app, cut["id"])[0]["valid"] is False  # kept, counted invalid

    # Text files count as they would alone: invalid, with the reason, named in the error.
    assert (no_images["captures_count"], no_images["invalid_count"]) == (2, 2)
    assert no_images["error"].startswith("2 of 2 files are not valid images. 'notes.txt': It "
                                         "is neither a JPEG, PNG or TIFF image nor a ZIP")
    assert captures_of(sqlite_app, seven["id"])[0]["reason"] == (
        "It is a 7-Zip archive; the station unpacks only ZIP archives.")
    assert seven["error"] == "It is a 7-Zip archive; the station unpacks only ZIP archives."
    # crc.zip: a.jpg invalid, b.jpg valid; cut.zip and old.7z: one invalid capture each;
    # docs.zip: two invalid captures.
    expected = {"files_count": 4, "captures_count": 6, "valid_count": 1, "invalid_count": 5}
    assert counters(sqlite_app, body["session_id"]) == expected == counted(sqlite_app,
                                                                           body["session_id"])
    assert_written_only_inside(tmp_path, before, data_dir, body["session_id"])


def test_clashing_cleaned_names_get_a_counter(sqlite_app, sqlite_client, data_dir, tmp_path):
    before = snapshot(tmp_path)
    archive = zip_with_raw_names([("pic.jpg", image_bytes(seed=1)),
                                  ("pic\x01.jpg", image_bytes(seed=2)),
                                  ("x", b"a file"), ("x/inside.jpg", image_bytes(seed=3))])
    response = post_files(sqlite_client, [("clash.zip", archive)])
    assert response.status_code == 201
    body = response.get_json()
    upload = only_upload(body)
    names = sorted(Path(c["path"]).name for c in captures_of(sqlite_app, upload["id"]))
    assert names == ["pic-2.jpg", "pic.jpg", "x"]  # 'x' is a text file: invalid
    assert upload["note"] == ("1 entry was not extracted: 'x/inside.jpg' (a file and a folder "
                              "in the archive have the same name).")
    extracted = upload_root(data_dir, body) / "clash"
    assert (extracted / "pic.jpg").read_bytes() == image_bytes(seed=1)
    assert (extracted / "pic-2.jpg").read_bytes() == image_bytes(seed=2)
    expected = {"files_count": 1, "captures_count": 3, "valid_count": 2, "invalid_count": 1}
    assert counters(sqlite_app, body["session_id"]) == expected == counted(sqlite_app,
                                                                           body["session_id"])
    assert_written_only_inside(tmp_path, before, data_dir, body["session_id"])


def test_oversized_index_is_refused_before_it_is_read(sqlite_app, sqlite_client, data_dir,
                                                      tmp_path):
    import struct

    before = snapshot(tmp_path)
    data = bytearray(zip_bytes({"a.jpg": image_bytes()}))
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<I", data, end + 12, 20 * 1024 * 1024)  # index "size": 20 MB
    body = post_files(sqlite_client, [("index.zip", bytes(data))]).get_json()
    capture = captures_of(sqlite_app, only_upload(body)["id"])
    assert len(capture) == 1 and capture[0]["valid"] is False
    assert "table of contents is 20 MB" in capture[0]["reason"]
    assert sorted(p.name for p in upload_root(data_dir, body).iterdir()) == ["index.zip"]
    expected = {"files_count": 1, "captures_count": 1, "valid_count": 0, "invalid_count": 1}
    assert counters(sqlite_app, body["session_id"]) == expected == counted(sqlite_app,
                                                                           body["session_id"])
    assert_written_only_inside(tmp_path, before, data_dir, body["session_id"])
