"""Every reason shown to a person is a sentence about the file, never a library's words: a
damaged ZIP is called damaged, Pillow's internals stay in the log, a text file is judged the
same alone and inside a ZIP, and the upload record carries the reason in `error`."""

from __future__ import annotations

import re

from scanner_app.uploads.files.image_check import CUT_OFF
from tests.uploads.conftest import captures_of, counted, counters
from tests.uploads.helpers import (
    assert_written_only_inside,
    image_bytes,
    post_files,
    snapshot,
    zip_bytes,
)

LIBRARY_WORDS = re.compile(r"truncated|bytes not processed|decoder|Errno|BadZipFile|"
                           r"only ZIP archives are extracted|\(")


def _is_a_sentence(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Z'][^\n]*[.]", text)) and not LIBRARY_WORDS.search(text)


def test_a_damaged_zip_is_called_damaged_not_a_zip_archive(sqlite_app, sqlite_client):
    good = zip_bytes({"a.jpg": image_bytes(seed=1), "b.jpg": image_bytes(seed=2)})
    no_index = good[: len(good) // 2]  # starts like a ZIP, its table of contents is gone
    garbage = b"PK\x03\x04" + bytes(range(256)) * 4
    body = post_files(sqlite_client, [("broken.zip", no_index),
                                      ("garbage.zip", garbage)]).get_json()
    expected = ("It looks like a ZIP archive but is damaged, so nothing was extracted. Copy it "
                "again or make a new ZIP.")
    for upload in body["uploads"]:
        [capture] = captures_of(sqlite_app, upload["id"])
        assert (capture["valid"], capture["reason"]) == (False, expected)
        assert upload["status"] == "done" and upload["error"] == expected


def test_pillow_internals_become_a_sentence_about_the_picture(sqlite_app, sqlite_client):
    photo = image_bytes("JPEG", (120, 90), seed=7)
    body = post_files(sqlite_client, [("cut.jpg", photo[:-40])]).get_json()
    [upload] = body["uploads"]
    [capture] = captures_of(sqlite_app, upload["id"])
    assert capture["reason"] == CUT_OFF == upload["error"]
    assert _is_a_sentence(CUT_OFF)


def test_a_text_file_is_judged_the_same_alone_and_inside_a_zip(sqlite_app, sqlite_client):
    alone = post_files(sqlite_client, [("notes.txt", b"hello")]).get_json()["uploads"][0]
    zipped = post_files(sqlite_client, [("bundle.zip", zip_bytes({
        "notes.txt": b"hello", "photo.jpg": image_bytes(seed=3),
        ".DS_Store": b"\x00\x00\x00\x01Bud1"}))]).get_json()["uploads"][0]

    [alone_capture] = captures_of(sqlite_app, alone["id"])
    inside = {c["path"].rsplit("/", 1)[-1]: c for c in captures_of(sqlite_app, zipped["id"])}
    assert set(inside) == {"notes.txt", "photo.jpg"}  # clutter is kept, never counted
    assert alone_capture["valid"] is inside["notes.txt"]["valid"] is False
    assert alone_capture["reason"] == inside["notes.txt"]["reason"]
    assert _is_a_sentence(alone_capture["reason"])
    assert (alone["captures_count"], alone["invalid_count"]) == (1, 1)
    assert (zipped["captures_count"], zipped["valid_count"], zipped["invalid_count"]) == (2, 1, 1)
    # The upload records carry the reason: the file's own, or the archive's files by name.
    assert alone["error"] == alone_capture["reason"]
    assert zipped["error"] == f"1 of 2 files is not a valid image. 'notes.txt': " \
                              f"{alone_capture['reason']}"


def test_many_invalid_files_in_an_archive_name_the_first_three(sqlite_app, sqlite_client):
    members = {f"n{i}.txt": b"x" for i in range(5)}
    members["ok.jpg"] = image_bytes(seed=4)
    [upload] = post_files(sqlite_client, [("texts.zip", zip_bytes(members))]
                          ).get_json()["uploads"]
    assert upload["error"].startswith("5 of 6 files are not valid images. 'n0.txt': ")
    assert upload["error"].count(".txt'") == 3
    assert upload["error"].endswith(" And 2 more.")


def test_one_bad_file_does_not_reject_the_good_ones(sqlite_app, sqlite_client, data_dir, tmp_path):
    before = snapshot(tmp_path)
    good = image_bytes("JPEG", (80, 60), seed=3)
    files = [
        ("good.jpg", good),
        ("cut.jpg", good[: len(good) // 2]),
        ("noise.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8),
        ("empty.jpg", b""),
        ("lies.jpg", b"just some text, not a photo\n"),
        ("notes.txt", b"hello"),
        ("cut.png", image_bytes("PNG", (200, 200), seed=4)[:300]),
        ("cut.tif", image_bytes("TIFF", (100, 100), seed=5)[:5000]),
        ("anim.gif", b"GIF89a" + b"\x00" * 20),
    ]
    response = post_files(sqlite_client, files)
    assert response.status_code == 201
    body = response.get_json()
    session_id = body["session_id"]
    by_name = {u["filename"]: u for u in body["uploads"]}
    assert all(u["status"] == "done" for u in body["uploads"])

    def reason(name: str) -> str:
        capture = captures_of(sqlite_app, by_name[name]["id"])
        assert len(capture) == 1 and capture[0]["valid"] is False, capture
        return capture[0]["reason"]

    assert captures_of(sqlite_app, by_name["good.jpg"]["id"])[0]["valid"] is True
    assert by_name["good.jpg"]["error"] is None
    cut_off = ("The image is cut off: the file ends before the picture does. Copy or export it "
               "again.")
    for damaged in ("cut.jpg", "cut.png", "cut.tif"):
        assert reason(damaged) == cut_off
    assert reason("noise.jpg") == ("The file starts like a JPEG image, but the rest is damaged "
                                   "or missing and no picture can be read. Copy or export it "
                                   "again.")
    for name, upload in by_name.items():
        if name != "good.jpg":
            # A sentence about the file for a person: no library's words, and the upload
            # record carries it as its error.
            assert upload["error"] == reason(name), name
            assert re.fullmatch(r"[A-Z][^()]*\.", reason(name)), reason(name)
            assert not re.search(r"truncated|bytes not processed|decoder|Errno", reason(name))
    assert reason("empty.jpg") == ("The file is empty: it holds no bytes at all. Copy or export "
                                   "it again.")
    assert reason("lies.jpg") == "It is named .jpg but is not a JPEG, PNG or TIFF image."
    assert reason("notes.txt") == "It is neither a JPEG, PNG or TIFF image nor a ZIP archive."
    assert reason("anim.gif") == "GIF images are not accepted; send JPEG, PNG or TIFF."

    expected = {"files_count": 9, "captures_count": 9, "valid_count": 1, "invalid_count": 8}
    assert counters(sqlite_app, session_id) == expected == counted(sqlite_app, session_id)
    # Kept, every one of them (an empty file too).
    assert (data_dir / "sessions" / str(session_id) / "images" / "uploads"
            / str(by_name["empty.jpg"]["id"]) / "empty.jpg").stat().st_size == 0
    assert_written_only_inside(tmp_path, before, data_dir, session_id)
