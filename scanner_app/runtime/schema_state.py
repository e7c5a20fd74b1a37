"""Is the database already at the newest migration? Answered without Flask, SQLAlchemy or
alembic, so `scanner run` (re)starting a station whose database is up to date skips the
`scanner db upgrade` process (the app and alembic loaded for nothing, seconds on a Pi).

Only SQLite files are read here (the standard library's sqlite3); for any other database, and
whenever the answer is not a clear yes, the caller migrates as before.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from urllib.parse import unquote, urlsplit

VERSIONS_DIR = Path(__file__).resolve().parent.parent / "migrations" / "versions"
_REVISION = re.compile(r"^revision\s*(?::\s*str)?\s*=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN = re.compile(r"^down_revision\s*(?::[^=]*)?=\s*(.+)$", re.M)
_QUOTED = re.compile(r"['\"]([^'\"]+)['\"]")


def head_revisions(versions_dir: Path = VERSIONS_DIR) -> set[str]:
    """The revisions no other migration builds on (one, unless the chain has branched)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in versions_dir.glob("*.py"):
        text = script.read_text(encoding="utf-8")
        found = _REVISION.search(text)
        if found is None:
            continue
        revisions.add(found.group(1))
        down = _DOWN.search(text)
        if down is not None:
            parents.update(_QUOTED.findall(down.group(1)))
    return revisions - parents


def sqlite_path(database_url: str) -> Path | None:
    """The file of a sqlite:/// URL (None for anything else, or an in-memory database)."""
    if not database_url.startswith("sqlite"):
        return None
    parts = urlsplit(database_url)
    path = unquote(parts.path)
    if parts.netloc or not path or path == "/" or ":memory:" in path:
        return None
    # sqlite:///relative/file -> "/relative/file"; sqlite:////abs/file -> "//abs/file"
    return Path(path[1:])


def is_up_to_date(database_url: str) -> bool:
    """True only when the database is a SQLite file whose alembic_version is the one head."""
    path = sqlite_path(database_url)
    heads = head_revisions()
    if path is None or len(heads) != 1 or not path.is_file():
        return False
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return {row[0] for row in rows} == heads
