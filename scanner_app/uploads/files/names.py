"""Safe names for uploaded files and for entries extracted from archives.

A name sent by a person (or stored in a ZIP) never decides a path: it is reduced to one clean
path component here, and files are only ever created inside the upload's own folder. The name
as sent is kept in the database (Upload.filename).
"""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_BYTES = 200  # well under the 255-byte limit of ext4/exFAT, leaving room for "-2"
# An archive entry's whole path inside its extraction folder: far under Linux's PATH_MAX
# (4096) once the data dir and session folders are in front of it, so that every tool that
# later opens it (doctor, exports, thumbnails, a USB stick) can.
MAX_ARCHIVE_PATH_BYTES = 1024
MAX_ARCHIVE_DEPTH = 32  # folders inside the archive, the file's own name not counted
MAX_EXTENSION_BYTES = 16
FALLBACK_NAME = "file"

# Characters that separate paths or are refused by FAT/exFAT/NTFS (USB sticks, exports).
_FORBIDDEN = set('/\\:*?"<>|')
_DRIVE = re.compile(r"^[A-Za-z]:")
_EXTENSION = re.compile(r"^\.[0-9A-Za-z]{1,15}$")


class UnsafePath(ValueError):
    """An archive entry whose path points outside its folder; the message says why."""


def _clean_chars(text: str) -> str:
    out = []
    for char in text:
        category = unicodedata.category(char)
        if char in _FORBIDDEN:
            out.append("_")
        elif category in ("Zl", "Zp") or char in "\t\n\r\v\f":
            out.append(" ")
        elif category in ("Cc", "Cf", "Cs", "Co", "Cn"):
            # Control, format (e.g. right-to-left override), surrogate and unassigned
            # characters make names that display as something they are not.
            continue
        else:
            out.append(char)
    return " ".join("".join(out).split())


def _truncate_utf8(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")


def shown_filename(raw: str | None) -> str:
    """The name a person sent, as the upload record keeps it: control characters (a NUL,
    which PostgreSQL cannot store in text) removed, everything else as sent; the file itself
    is stored under clean_filename()."""
    kept = "".join(c for c in (raw or "") if unicodedata.category(c) != "Cc")
    return kept or FALLBACK_NAME


def split_extension(name: str) -> tuple[str, str]:
    """("photo", ".jpg"); only a short alphanumeric suffix counts as an extension."""
    stem, dot, ext = name.rpartition(".")
    if dot and stem and _EXTENSION.match("." + ext):
        return stem, "." + ext
    return name, ""


def clean_component(raw: str, fallback: str = FALLBACK_NAME) -> str:
    """One safe path component: NFC, no separators or control characters, no leading dots,
    at most MAX_NAME_BYTES bytes of UTF-8 with the extension kept; `fallback` if nothing is
    left."""
    name = _clean_chars(unicodedata.normalize("NFC", raw))
    name = name.strip(" .")  # no hidden files, no "." or ".." (Windows also drops trailing dots)
    if not name:
        return fallback
    stem, ext = split_extension(name)
    if len(ext.encode("utf-8")) > MAX_EXTENSION_BYTES:
        stem, ext = name, ""
    stem = _truncate_utf8(stem, MAX_NAME_BYTES - len(ext.encode("utf-8"))).rstrip(" .")
    return (stem or fallback) + ext


def clean_filename(raw: str | None, fallback: str = FALLBACK_NAME) -> str:
    """The stored name for a file a person sent: its last path component, cleaned. Browsers
    on Windows may send a whole path ("C:\\Users\\me\\photo.jpg")."""
    raw = raw or ""
    base = re.split(r"[/\\]", raw)[-1]
    base = _DRIVE.sub("", base)
    return clean_component(base, fallback)


def archive_member_parts(name: str) -> list[str]:
    """Clean path components for an archive entry, or UnsafePath when the entry names an
    absolute path, a drive or a parent directory, or is too deep or too long to be opened
    safely later. An empty list means a directory entry."""
    normalised = name.replace("\\", "/")
    if normalised.startswith("/"):
        raise UnsafePath("it is an absolute path")
    if _DRIVE.match(normalised):
        raise UnsafePath("it names a drive")
    raw_parts = normalised.split("/")
    if any(part.strip() == ".." for part in raw_parts):
        raise UnsafePath("it points outside the archive's folder")
    parts = []
    for part in raw_parts:
        if part in ("", "."):
            continue
        parts.append(clean_component(part))
    if normalised.endswith("/"):
        return []
    if len(parts) - 1 > MAX_ARCHIVE_DEPTH:
        raise UnsafePath(f"it is nested more than {MAX_ARCHIVE_DEPTH} folders deep")
    if len("/".join(parts).encode("utf-8")) > MAX_ARCHIVE_PATH_BYTES:
        raise UnsafePath(f"its path is longer than {MAX_ARCHIVE_PATH_BYTES} bytes")
    return parts


def with_counter(name: str, counter: int) -> str:
    """'photo.jpg', 2 -> 'photo-2.jpg' (used when a cleaned name is already taken)."""
    stem, ext = split_extension(name)
    suffix = f"-{counter}"
    stem = _truncate_utf8(stem, MAX_NAME_BYTES - len(ext.encode()) - len(suffix))
    return f"{stem}{suffix}{ext}"
