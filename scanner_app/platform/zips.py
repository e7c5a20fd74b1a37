"""ZIP exports: one file per scan in the session's exports/, and ZIPs streamed to a browser.

Written ZIPs (exports/scan-<id>.zip) store images and deflate text: JPEG and PNG are
compressed already, so deflating them costs a Pi's CPU for nothing.

Streamed ZIPs (the session download, a scan's download when its ZIP is not written yet) are
built with zipstream-ng in "sized" mode: every entry is stored, so the archive's exact length
is known before the first byte is sent and the browser shows real progress (Content-Length).
Files are read in small blocks while the response is sent: memory stays flat whatever the
session's size, and nothing is written to disk.
"""

from __future__ import annotations

import os
import re
import unicodedata
import zipfile
from collections.abc import Iterator
from pathlib import Path

from flask import Response
from zipstream import ZipStream

from scanner_app.platform.storage import atomic_open, current_storage

# Already compressed: deflating them again only costs time.
STORED_SUFFIXES = frozenset({
    ".jpg", ".jpeg", ".png", ".zip", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".webp",
    ".heic", ".avif", ".mp4", ".mov",
})


def is_temp_file(name: str) -> bool:
    """Half-written files of atomic writes (`.<name>.<random>.part`, or `.tmp` from older
    writers); never exported."""
    return name.startswith(".") and name.endswith((".part", ".tmp"))


def compression_for(path: Path) -> int:
    return zipfile.ZIP_STORED if path.suffix.lower() in STORED_SUFFIXES else zipfile.ZIP_DEFLATED


def iter_tree_files(root: Path) -> Iterator[tuple[Path, str]]:
    """(path, name in the ZIP) for every regular file under `root`, in a stable order,
    listed lazily while the walk goes on. Temp files and symlinks are left out (a link could
    point outside the session)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(filenames):
            path = base / name
            if is_temp_file(name) or path.is_symlink() or not path.is_file():
                continue
            yield path, path.relative_to(root).as_posix()


# Rewritten in place (atomically, but with a new size) while a scan or an upload runs: read
# when the download starts, so the size announced in Content-Length stays true. They are small
# (a session record, a scan's frame list).
_REWRITTEN = re.compile(r"^metadata/(session\.json|scans/[^/]+\.json)$")
# The per-scan ZIPs repeat the scans' frames: a session download without them is half the size.
_SCAN_EXPORT = re.compile(r"^exports/scan-[^/]+\.zip$")


# Written in place (not renamed into place) while an upload is processed: such a file may
# grow between the listing and its turn, so exactly the listed size is sent.
_WRITTEN_IN_PLACE = re.compile(r"^images/uploads/")
READ_SIZE = 64 * 1024


def _exactly(path: Path, size: int) -> Iterator[bytes]:
    """The first `size` bytes of `path`, read when the archive reaches it."""
    with open(path, "rb") as handle:
        left = size
        while left:
            data = handle.read(min(READ_SIZE, left))
            if not data:  # cut short meanwhile: the download fails rather than lie
                raise OSError(f"{path.name} became shorter while it was being downloaded")
            left -= len(data)
            yield data


def _add_file(archive: ZipStream, path: Path, arcname: str) -> None:
    """Queue one file; a file that vanished since the listing is left out."""
    try:
        if _REWRITTEN.match(arcname):
            archive.add(path.read_bytes(), arcname)
        elif _WRITTEN_IN_PLACE.match(arcname):
            size = path.stat().st_size
            archive.add(_exactly(path, size), arcname, size=size)
        else:
            archive.add_path(str(path), arcname, recurse=False)
    except FileNotFoundError:
        pass


def session_zip(root: Path) -> ZipStream:
    """The session directory as a sized, streamed ZIP (`len()` is its exact size), without
    the per-scan ZIPs in exports/ and without half-written files. Files are listed now and
    read while the archive is iterated; no app context is needed for either."""
    archive = ZipStream(sized=True)
    for path, arcname in iter_tree_files(root):
        if not _SCAN_EXPORT.match(arcname):
            _add_file(archive, path, arcname)
    return archive


def scan_zip(session_id: int, scan_id: int) -> ZipStream:
    """A scan's frames and metadata/scans/<id>.json as a sized, streamed ZIP, with the same
    names as the written exports/scan-<id>.zip. Needs an app context."""
    store = current_storage()
    root = store.session_dir(session_id)
    archive = ZipStream(sized=True)
    for path, arcname in iter_tree_files(store.scan_images_dir(session_id, scan_id)):
        _add_file(archive, path, f"images/scans/{int(scan_id)}/{arcname}")
    metadata = store.scan_metadata_path(session_id, scan_id)
    if metadata.is_file():
        _add_file(archive, metadata, metadata.relative_to(root).as_posix())
    return archive


def zip_response(archive: ZipStream, filename: str) -> Response:
    """A streamed ZIP download whose Content-Length is the archive's exact size."""
    return Response(
        iter(archive),
        mimetype="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Content-Length": str(len(archive)),
            "Cache-Control": "no-store",
        },
        direct_passthrough=True,
    )


def slug(text: str, max_length: int = 60) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:max_length].strip("-")


def session_export_filename(session_id: int, name: str) -> str:
    suffix = slug(name)
    return f"session-{session_id}-{suffix}.zip" if suffix else f"session-{session_id}.zip"


def write_scan_export(session_id: int, scan_id: int) -> Path:
    """Write exports/scan-<scan id>.zip: the scan's frames and metadata/scans/<id>.json,
    paths as in the session directory, atomically (the exports folder never holds half a
    ZIP). It never creates the session directory: for a session that is gone it raises
    FileNotFoundError. Needs an app context."""
    store = current_storage()
    root = store.session_dir(session_id)
    files = [(path, f"images/scans/{int(scan_id)}/{arc}")
             for path, arc in iter_tree_files(store.scan_images_dir(session_id, scan_id))]
    metadata = store.scan_metadata_path(session_id, scan_id)
    if metadata.is_file():
        files.append((metadata, metadata.relative_to(root).as_posix()))

    target = store.scan_export_path(session_id, scan_id)
    # Without parents: made inside an existing session directory, or not at all.
    target.parent.mkdir(exist_ok=True)
    with atomic_open(target) as handle, zipfile.ZipFile(
            handle, "w", allowZip64=True, strict_timestamps=False) as archive:
        for path, arcname in files:
            archive.write(path, arcname, compress_type=compression_for(path))
    return target
