"""What may be extracted from a ZIP archive, decided before anything is written.

A whole archive is refused (kept, counted as one invalid file) when it is a ZIP bomb: too
many entries, too much data once unpacked, or data that unpacks out of all proportion to its
compressed size. Single entries are skipped (and named in the upload's note) when they point
outside the archive's folder (absolute paths, drive letters, "..") or are symbolic links.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from typing import BinaryIO

from scanner_app.uploads.files.names import UnsafePath, archive_member_parts

MiB = 1024 * 1024


@dataclass(frozen=True)
class ZipLimits:
    max_members: int = 5000
    max_total_bytes: int = 2048 * MiB
    # Deflate can reach ~1000:1 on zeros; photos barely compress. The ratio is only judged
    # once an entry (or the archive) unpacks to more than ratio_floor_bytes.
    max_ratio: float = 100.0
    ratio_floor_bytes: int = 1 * MiB


LIMITS = ZipLimits()

NESTED_ARCHIVE_EXTENSIONS = {".zip", ".7z", ".rar", ".tar", ".gz", ".tgz", ".bz2", ".xz",
                             ".zst", ".lz", ".lzma", ".cab", ".jar", ".apk"}
_ARCHIVE_MAGIC = (
    (b"PK\x03\x04", "ZIP"), (b"PK\x05\x06", "ZIP"), (b"7z\xbc\xaf\x27\x1c", "7-Zip"),
    (b"Rar!\x1a\x07", "RAR"), (b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "Zstandard"),
)


class ArchiveRejected(Exception):
    """The whole archive is refused; str() is a sentence for a person."""


MAX_INDEX_BYTES = 16 * MiB  # the central directory zipfile reads into memory on opening


def precheck_zip(handle: BinaryIO, limits: ZipLimits | None = None) -> None:
    """Refuse an archive by its end record alone, before zipfile reads its whole index into
    memory (an index of millions of entries is a bomb of its own)."""
    limits = limits or LIMITS
    read_end_record = getattr(zipfile, "_EndRecData", None)  # stable since Python 2
    if read_end_record is None:
        return
    handle.seek(0)
    record = read_end_record(handle)
    handle.seek(0)
    if not record:
        return  # zipfile will call it damaged
    entries = record[zipfile._ECD_ENTRIES_TOTAL]
    index_bytes = record[zipfile._ECD_SIZE]
    if entries > limits.max_members:
        raise ArchiveRejected(
            f"The ZIP archive has {entries} entries; at most {limits.max_members} are "
            "extracted. Split it into smaller archives.")
    if index_bytes > MAX_INDEX_BYTES:
        raise ArchiveRejected(
            f"The ZIP archive's table of contents is {index_bytes / MiB:.0f} MB, far more than "
            "its entries need; it was not extracted.")


@dataclass(frozen=True)
class Member:
    info: zipfile.ZipInfo
    parts: list[str]  # cleaned path components, inside the extraction folder


@dataclass
class ZipPlan:
    members: list[Member] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name in archive, why)


def sniff_archive(head: bytes) -> str | None:
    """The archive kind the first bytes announce ("ZIP", "7-Zip", ...), or None. A tar file
    announces itself at offset 257."""
    for magic, kind in _ARCHIVE_MAGIC:
        if head.startswith(magic):
            return kind
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return None


def is_symlink(info: zipfile.ZipInfo) -> bool:
    # Unix mode bits live in the high 16 bits of external_attr (when made on Unix).
    return stat.S_ISLNK(info.external_attr >> 16)


def _is_resource_fork(name: str) -> bool:
    # macOS adds __MACOSX/ and ._name entries: metadata, not files anyone sent.
    return name.startswith("__MACOSX/") or name.split("/")[-1].startswith("._")


def plan_zip(archive: zipfile.ZipFile, archive_size: int, free_bytes: int | None = None,
             limits: ZipLimits | None = None) -> ZipPlan:
    """Check the whole archive against `limits` (default LIMITS), then list the entries that
    may be extracted. Raises ArchiveRejected for ZIP bombs and archives larger than the free
    space."""
    limits = limits or LIMITS
    infos = archive.infolist()
    if len(infos) > limits.max_members:
        raise ArchiveRejected(
            f"The ZIP archive has {len(infos)} entries; at most {limits.max_members} are "
            "extracted. Split it into smaller archives.")
    total = sum(info.file_size for info in infos)
    if total > limits.max_total_bytes:
        raise ArchiveRejected(
            f"The ZIP archive would unpack to {total / MiB:.0f} MB; at most "
            f"{limits.max_total_bytes / MiB:.0f} MB are extracted. Split it into smaller "
            "archives.")
    packed = sum(info.compress_size for info in infos)
    # Declared compressed sizes can lie; the archive's real size cannot.
    ratio = total / max(min(packed, archive_size), 1)
    if total > limits.ratio_floor_bytes and ratio > limits.max_ratio:
        raise ArchiveRejected(
            f"The ZIP archive would unpack to {ratio:.0f} times its size, which is how ZIP "
            "bombs look; it was not extracted.")
    for info in infos:
        member_ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > limits.ratio_floor_bytes and member_ratio > limits.max_ratio:
            raise ArchiveRejected(
                f"'{info.filename}' in the ZIP archive would unpack to {member_ratio:.0f} "
                "times its size, which is how ZIP bombs look; the archive was not extracted.")
    if free_bytes is not None and total > free_bytes:
        raise ArchiveRejected(
            f"The ZIP archive would unpack to {total / MiB:.0f} MB but only "
            f"{max(free_bytes, 0) / MiB:.0f} MB are free. Free some space and upload it again.")

    plan = ZipPlan()
    for info in infos:
        name = info.filename
        try:
            parts = archive_member_parts(name)
        except UnsafePath as exc:
            plan.skipped.append((name, str(exc)))
            continue
        if not parts or info.is_dir():
            continue  # folders are made as their files need them
        if is_symlink(info):
            plan.skipped.append((name, "it is a symbolic link"))
            continue
        if info.flag_bits & 0x1:
            plan.skipped.append((name, "it is encrypted"))
            continue
        if _is_resource_fork(name):
            continue
        plan.members.append(Member(info, parts))
    return plan


class MemberTooLarge(Exception):
    pass


def copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, dest: BinaryIO,
                budget: int) -> int:
    """Unpack one entry into `dest`, never writing more than the entry declares nor more than
    `budget` bytes. Returns the bytes written; zipfile checks the CRC at the end."""
    written = 0
    with archive.open(info) as source:
        while chunk := source.read(1024 * 1024):
            written += len(chunk)
            if written > info.file_size or written > budget:
                raise MemberTooLarge(info.filename)
            dest.write(chunk)
    return written


def free_bytes_for(path, reserve_bytes: int) -> int:
    return shutil.disk_usage(path).free - reserve_bytes


SHOWN_NAME_CHARS = 80  # a note names entries; a 6,000-character name would drown it


def _shown(name: str) -> str:
    if len(name) <= SHOWN_NAME_CHARS:
        return name
    half = SHOWN_NAME_CHARS // 2
    return f"{name[:half]}…{name[-half:]}"


def describe_skipped(skipped: list[tuple[str, str]], limit: int = 5) -> str:
    """"2 entries were not extracted: '../x.jpg' (it points ...), 'link' (it is a ...)."""
    shown = ", ".join(f"'{_shown(name)}' ({why})" for name, why in skipped[:limit])
    more = f" and {len(skipped) - limit} more" if len(skipped) > limit else ""
    noun = "entry was" if len(skipped) == 1 else "entries were"
    return f"{len(skipped)} {noun} not extracted: {shown}{more}."
