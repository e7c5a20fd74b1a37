"""ZIP exports: one file per scan in the session's exports/, and the whole session streamed.

Images are stored, not deflated: JPEG and PNG are compressed already, so deflating costs a
Pi's CPU for nothing. Text (JSON, logs) is deflated.

The session ZIP is produced while it is sent: `stream_zip` writes zipfile entries into a sink
that is not seekable, so zipfile puts sizes and CRCs in data descriptors after each entry
and never goes back; whatever the sink holds is handed on in chunks of about 1 MiB. Memory
stays flat whatever the session's size, and nothing is written to disk.
"""

from __future__ import annotations

import os
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from scanner_app.platform.storage import atomic_open, current_storage

CHUNK_SIZE = 1024 * 1024
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


def _zipinfo(path: Path, arcname: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo.from_file(path, arcname, strict_timestamps=False)
    info.compress_type = compression_for(path)
    return info


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


class _Sink:
    """A write-only, non-seekable file for zipfile; `take()` empties it."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        self.size = 0
        return data


def stream_zip(files: Iterable[tuple[Path, str]], chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield a ZIP of `files` piece by piece. A file that disappears before it is reached is
    left out (a session can change while it downloads)."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", allowZip64=True) as archive:
        for path, arcname in files:
            try:
                handle = open(path, "rb")  # noqa: SIM115 - closed by the with below
            except FileNotFoundError:
                continue
            with handle:
                info = _zipinfo(path, arcname)
                with archive.open(info, "w") as entry:
                    while data := handle.read(chunk_size):
                        entry.write(data)
                        if sink.size >= chunk_size:
                            yield sink.take()
            if sink.size >= chunk_size:
                yield sink.take()
    rest = sink.take()  # the central directory, written when the archive closed
    if rest:
        yield rest


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
