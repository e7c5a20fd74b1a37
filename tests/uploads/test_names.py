"""Safe names: what a person's file name (or a ZIP entry's) becomes on disk."""

from __future__ import annotations

import unicodedata

import pytest

from scanner_app.uploads.files.names import (
    MAX_NAME_BYTES,
    UnsafePath,
    archive_member_parts,
    clean_filename,
    with_counter,
)


@pytest.mark.parametrize("raw,expected", [
    ("photo.jpg", "photo.jpg"),
    ("../../etc/passwd", "passwd"),
    ("..", "file"),
    (".", "file"),
    ("", "file"),
    (None, "file"),
    ("/absolute/path/img.png", "img.png"),
    ("C:\\Users\\me\\Pictures\\IMG 1.JPG", "IMG 1.JPG"),
    ("C:evil.jpg", "evil.jpg"),
    (".hidden.jpg", "hidden.jpg"),
    ("a\x00b\x1fc.jpg", "abc.jpg"),
    ("line\nbreak.jpg", "line break.jpg"),
    ("what?*<>|\".jpg", "what______.jpg"),
    ("photo\u202egpj.exe", "photogpj.exe"),  # right-to-left override removed
    ("   spaced   out   .jpg  ", "spaced out.jpg"),
    ("trailing dots...", "trailing dots"),
])
def test_clean_filename(raw, expected):
    assert clean_filename(raw) == expected


def test_unicode_is_nfc_normalised():
    decomposed = "Cafe\u0301 \u00fcber \u65e5\u672c.jpg"  # e + combining acute
    cleaned = clean_filename(decomposed)
    assert cleaned == unicodedata.normalize("NFC", decomposed)
    assert "\u00e9" in cleaned


def test_long_names_are_cut_in_bytes_keeping_the_extension():
    name = "\u00e9" * 300 + ".jpeg"  # 600 bytes of UTF-8 before the extension
    cleaned = clean_filename(name)
    assert cleaned.endswith(".jpeg")
    assert len(cleaned.encode("utf-8")) <= MAX_NAME_BYTES
    cleaned.encode("utf-8").decode("utf-8")  # never a broken character
    long_ascii = clean_filename("x" * 1000)
    assert len(long_ascii.encode()) == MAX_NAME_BYTES


def test_counter_suffix_keeps_extension_and_limit():
    assert with_counter("photo.jpg", 2) == "photo-2.jpg"
    long = clean_filename("y" * 500 + ".png")
    assert len(with_counter(long, 12).encode()) <= MAX_NAME_BYTES
    assert with_counter(long, 12).endswith("-12.png")


@pytest.mark.parametrize("name,why", [
    ("/etc/cron.d/evil", "absolute"),
    ("\\windows\\evil.jpg", "absolute"),
    ("C:/evil.jpg", "drive"),
    ("c:evil.jpg", "drive"),
    ("../evil.jpg", "outside"),
    ("a/../../evil.jpg", "outside"),
    ("a\\..\\..\\evil.jpg", "outside"),
])
def test_hostile_archive_paths_are_refused(name, why):
    with pytest.raises(UnsafePath, match=why):
        archive_member_parts(name)


def test_archive_paths_keep_folders_cleaned():
    assert archive_member_parts("scan/frames/001.jpg") == ["scan", "frames", "001.jpg"]
    assert archive_member_parts("./a//b/.hidden") == ["a", "b", "hidden"]
    assert archive_member_parts("folder/") == []
