"""The one storage manager: where a session's files live, and how they are written.

Layout (CONTRACT "On disk"): <data dir>/sessions/<id>/{metadata,images,exports}/.
A directory is made only for a session id the database already committed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

# One atomic writer for the whole station (temp file beside the target, fsync, rename, fsync
# the directory). It never creates folders: a late write must not bring back the directory
# of a session that was deleted or merged meanwhile.
from hal.atomic import atomic_write_bytes, fsync_dir
from scanner_app.config import current_settings

__all__ = ["StorageManager", "atomic_open", "atomic_write_bytes", "atomic_write_json",
           "current_storage", "fsync_dir"]

# Made up front, so later moves (merge) never need to create a folder they could leave behind.
SESSION_SUBDIRS = (
    "metadata/scans", "metadata/thumbnails", "images/scans", "images/uploads", "exports",
)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, json.dumps(data, indent=2, sort_keys=True).encode("utf-8") + b"\n")


@contextlib.contextmanager
def atomic_open(path: Path) -> Iterator[BinaryIO]:
    """atomic_write_bytes for data written piece by piece (e.g. a ZIP): yields a binary file
    beside `path` that appears at `path` only once complete (fsync, rename, fsync the folder).
    On any error the temp file is removed and `path` is left as it was. Like
    atomic_write_bytes it never creates folders: a missing folder raises FileNotFoundError."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def current_storage() -> StorageManager:
    """The storage manager of the running app (its configured data dir)."""
    return StorageManager(current_settings().data_dir)


class StorageManager:
    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.sessions_root = self.data_dir / "sessions"

    # --- paths -------------------------------------------------------------------------
    def session_dir(self, session_id: int) -> Path:
        return self.sessions_root / str(int(session_id))

    def session_record_path(self, session_id: int) -> Path:
        """metadata/session.json; only scanner_app.sessions.record writes it."""
        return self.session_dir(session_id) / "metadata" / "session.json"

    def scan_images_dir(self, session_id: int, scan_id: int) -> Path:
        return self.session_dir(session_id) / "images" / "scans" / str(int(scan_id))

    def scan_metadata_path(self, session_id: int, scan_id: int) -> Path:
        return self.session_dir(session_id) / "metadata" / "scans" / f"{int(scan_id)}.json"

    def scan_frames_log_path(self, session_id: int, scan_id: int) -> Path:
        """metadata/scans/<id>.frames.jsonl: one line appended per frame recorded since the
        scan's <id>.json was last consolidated (scans/metadata.py); gone once it is."""
        return self.session_dir(session_id) / "metadata" / "scans" / f"{int(scan_id)}.frames.jsonl"

    def upload_dir(self, session_id: int, upload_id: int) -> Path:
        return self.session_dir(session_id) / "images" / "uploads" / str(int(upload_id))

    def exports_dir(self, session_id: int) -> Path:
        return self.session_dir(session_id) / "exports"

    def scan_export_path(self, session_id: int, scan_id: int) -> Path:
        return self.exports_dir(session_id) / f"scan-{int(scan_id)}.zip"

    def reconstruction_dir(self, session_id: int, scan_id: int) -> Path:
        """A scan's model and its report (reconstruction outputs), under the session's exports."""
        return self.exports_dir(session_id) / f"scan-{int(scan_id)}-model"

    def preview_path(self, session_id: int, capture_id: int) -> Path:
        """A JPEG of an image browsers cannot show (TIFF and the like), made once on demand."""
        return self.session_dir(session_id) / "metadata" / "previews" / f"{int(capture_id)}.jpg"

    def thumbnail_path(self, session_id: int, capture_id: int) -> Path:
        return self.session_dir(session_id) / "metadata" / "thumbnails" / f"{int(capture_id)}.jpg"

    def sessions_changed_path(self) -> Path:
        """A stamp overwritten after every commit that changed sessions, so each process can
        keep the totals over all sessions until it changes (sessions/totals.py)."""
        return self.data_dir / ".sessions-changed"

    def incoming_dir(self) -> Path:
        """Where upload bodies stream in before they move into a session (same filesystem,
        so the move is an atomic rename)."""
        return self.data_dir / "incoming"

    # --- session directories -----------------------------------------------------------
    def ensure_session_dir(self, session_id: int) -> Path:
        """Create the session directory and its sub-folders; safe to call any number of times
        from any number of processes."""
        root = self.session_dir(session_id)
        for sub in SESSION_SUBDIRS:
            (root / sub).mkdir(parents=True, exist_ok=True)
        return root

    def remove_session_dir(self, session_id: int) -> None:
        """Remove a session directory. It is first renamed aside (atomic), so a crash
        half-way never leaves a half-deleted directory under its id."""
        root = self.session_dir(session_id)
        if not root.exists():
            return
        trash = self.move_session_dir_aside(session_id)
        self.remove_session_dir_path(trash)

    def move_session_dir_aside(self, session_id: int) -> Path:
        """Rename the directory out of its id's way (atomic) to a unique name, so a crash can
        never block a later delete; returns the new path. Undo with os.replace(aside, root)."""
        aside = self.sessions_root / f".deleted-{int(session_id)}-{uuid.uuid4().hex[:8]}"
        os.replace(self.session_dir(session_id), aside)
        return aside

    def remove_session_dir_path(self, aside: Path) -> None:
        """Delete a directory already renamed out of the way of its session id."""
        fsync_dir(aside.parent)
        shutil.rmtree(aside, ignore_errors=True)

    def session_dir_ids(self) -> list[int]:
        if not self.sessions_root.exists():
            return []
        return sorted(int(p.name) for p in self.sessions_root.iterdir() if p.name.isdigit())
