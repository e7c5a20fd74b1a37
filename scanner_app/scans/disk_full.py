"""A full disk during a scan, whichever write hits it first (the frame file, the metadata or
the database): one sentence, and the scan ends `interrupted` so it resumes once space is freed."""

from __future__ import annotations

import errno

DISK_FULL = ("the disk is full, so the frame could not be saved. Delete old sessions or "
             "exports to make room.")
_SQLITE_FULL = 13  # sqlite3's SQLITE_FULL result code
_PG_DISK_FULL = "53100"  # PostgreSQL's disk_full SQLSTATE


def disk_full(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) says the disk is full: ENOSPC from a file write, or
    a database that could not grow (SQLite's SQLITE_FULL, PostgreSQL's disk_full)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            return True
        if getattr(current, "sqlite_errorcode", None) == _SQLITE_FULL:
            return True
        if getattr(current, "sqlstate", None) == _PG_DISK_FULL:
            return True
        if "database or disk is full" in str(current):
            return True
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return False
