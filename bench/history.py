"""A station with years of history, for benchmarks: 10,000 sessions and 1,000,000 captures
(one session of 50,000), built straight into a SQLite file in well under a minute.

    from bench.history import History, build_history, station_app
    history = build_history()                    # cached under /tmp, keyed by schema
    app = station_app(data_dir, history)         # an app on a private copy of it

The schema comes from the migrations (an empty database upgraded to head); the rows are bulk
INSERTs through sqlite3's executemany in one transaction (no ORM, no per-row commit). The built
file is cached as /tmp/scanner-bench-history-<migration head>-<shape>-v<BUILDER>.db and reused
while the migrations and this builder stay the same; callers work on a copy.

Shape: sessions one a day back from today (most automatic, every fifth a named one), each with
one completed scan whose frames are its captures (95% valid), one upload per session, and
BATCH_UPLOADS more uploads in the newest session (what an upload page polls). The session
with BIG_SESSION_CAPTURES captures is the second newest. Counters match the rows.

Run alone: python -m bench.history [SESSIONS CAPTURES] (prints the build time; the target is
under 60 s on SQLite for the full shape, exit 1 when missed).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

BUILDER = 1  # bump when the rows built change
SESSIONS = 10_000
CAPTURES = 1_000_000
BIG_SESSION_CAPTURES = 50_000
BATCH_UPLOADS = 50
BUILD_TARGET_SECONDS = 60.0
CACHE_DIR = Path(os.environ.get("BENCH_HISTORY_CACHE", tempfile.gettempdir()))


@dataclass(frozen=True)
class History:
    """A built database file and the ids a benchmark asks for."""

    path: Path
    sessions: int
    captures: int
    newest_session_id: int
    big_session_id: int | None  # the session holding BIG_SESSION_CAPTURES captures
    batch_upload_ids: tuple[int, ...]  # uploads of the newest session
    build_seconds: float  # 0.0 when it came from the cache


def station_env(data_dir: Path, database: Path | None = None) -> dict[str, str]:
    env = {"SCANNER_DATA_DIR": str(data_dir), "SCANNER_HAL": "mock", "SCANNER_TIMEZONE": "UTC"}
    if database is not None:
        env["SCANNER_DATABASE_URL"] = f"sqlite:///{database}"
    return env


def _migration_head() -> str:
    from alembic.script import ScriptDirectory

    from scanner_app import MIGRATIONS_DIR

    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head() or "base"


def _empty_schema(path: Path) -> None:
    """An empty station database at `path`, made by the migrations."""
    from flask_migrate import upgrade

    from scanner_app import create_app
    from scanner_app.config import load_settings
    from scanner_app.platform.extensions import db

    with tempfile.TemporaryDirectory(prefix="bench-history-schema-") as tmp:
        app = create_app(load_settings(env=station_env(Path(tmp), path)),
                         overrides={"TESTING": True})
        with app.app_context():
            upgrade()
            db.engine.dispose()


def _split(captures: int, sessions: int, big: int) -> list[int]:
    """Captures per session, newest first: the second newest gets `big` (when there are
    enough), the rest share what is left evenly."""
    counts = [0] * sessions
    big_index = 1 if sessions > 1 and big and captures >= big else None
    left = captures
    if big_index is not None:
        counts[big_index] = big
        left -= big
    others = [i for i in range(sessions) if i != big_index]
    for n, i in enumerate(others):
        counts[i] = left // len(others) + (1 if n < left % len(others) else 0)
    return counts


def _fill(path: Path, sessions: int, captures: int, big: int) -> History:
    today = date.today()
    now = datetime.now().replace(microsecond=0)
    counts = _split(captures, sessions, big)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -262144")  # 256 MB while building
    conn.execute("BEGIN")
    session_rows, scan_rows, upload_rows = [], [], []
    # Oldest first, so ids grow with time as on a real station; index 0 is the newest.
    for age in range(sessions - 1, -1, -1):
        day = today - timedelta(days=age)
        created = datetime.combine(day, datetime.min.time()) + timedelta(hours=9)
        sid = sessions - age
        n = counts[age]
        valid = n - n // 20
        manual = age % 5 == 4
        name = f"Trial {sid:05d} {day.isoformat()}" if manual else f"Session {day.isoformat()}"
        stamp = created.isoformat(" ")
        session_rows.append((sid, "manual" if manual else "auto", day.isoformat(), name,
                             "completed" if age > 1 else "active", 1, n, valid, n - valid,
                             1, stamp, stamp))
        scan_rows.append((sid, sid, 1, "completed", "standard", n, n, "api", stamp, stamp,
                          stamp))
        upload_rows.append((sid, sid, f"photo-{sid}.jpg", f"photo-{sid}.jpg", 1234, "done",
                            0, 0, 0, stamp))
    newest = sessions
    stamp = now.isoformat(" ")
    batch_ids = tuple(range(sessions + 1, sessions + 1 + BATCH_UPLOADS))
    upload_rows += [(uid, newest, f"batch-{uid}.jpg", f"batch-{uid}.jpg", 4321, "processing",
                     0, 0, 0, stamp) for uid in batch_ids]
    conn.executemany(
        "INSERT INTO sessions (id, kind, day, name, status, files_count, captures_count, "
        "valid_count, invalid_count, scans_count, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", session_rows)
    conn.executemany(
        "INSERT INTO scans (id, session_id, station, status, profile, frames_planned, "
        "frames_captured, source, created_at, started_at, finished_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", scan_rows)
    conn.executemany(
        "INSERT INTO uploads (id, session_id, filename, stored_name, size, status, "
        "captures_count, valid_count, invalid_count, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", upload_rows)

    def capture_rows():
        for age in range(sessions - 1, -1, -1):
            sid = sessions - age
            n = counts[age]
            taken = f"{(today - timedelta(days=age)).isoformat()} 09:00:00"
            for frame in range(n):
                ok = frame % 20 != 19
                yield (sid, sid, frame, f"images/scans/{sid}/frame_{frame:05d}.jpg",
                       (frame * 10) % 360, 0, 30.0, 1, ok,
                       None if ok else "The image is black.", 2028 if ok else None,
                       1520 if ok else None, taken, taken)

    conn.executemany(
        "INSERT INTO captures (session_id, scan_id, frame_index, path, angle_deg, ring, "
        "elevation_deg, scan_pass, valid, reason, width, height, taken_at, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", capture_rows())
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    big_id = sessions - counts.index(big) if big and big in counts else None
    return History(path, sessions, captures, newest, big_id, batch_ids, 0.0)


def build_history(sessions: int = SESSIONS, captures: int = CAPTURES,
                  big: int = BIG_SESSION_CAPTURES, *, use_cache: bool = True) -> History:
    """The history database (built, or the cached one for this schema and shape)."""
    head = _migration_head()
    path = CACHE_DIR / f"scanner-bench-history-{head}-{sessions}-{captures}-{big}-v{BUILDER}.db"
    counts = _split(captures, sessions, big)
    big_id = sessions - counts.index(big) if big and big in counts else None
    batch_ids = tuple(range(sessions + 1, sessions + 1 + BATCH_UPLOADS))
    if use_cache and path.exists():
        return History(path, sessions, captures, sessions, big_id, batch_ids, 0.0)
    started = time.perf_counter()
    building = path.with_suffix(f".building-{os.getpid()}")
    building.unlink(missing_ok=True)
    _empty_schema(building)
    history = _fill(building, sessions, captures, big)
    os.replace(building, path)  # whole or not at all: a half-built file is never cached
    seconds = time.perf_counter() - started
    return History(path, sessions, captures, history.newest_session_id, history.big_session_id,
                   history.batch_upload_ids, seconds)


def station_app(data_dir: Path, history: History):
    """A station app (TESTING) on a private copy of `history`'s database in `data_dir`."""
    from scanner_app import create_app
    from scanner_app.config import load_settings

    data_dir.mkdir(parents=True, exist_ok=True)
    database = data_dir / "scanner.db"
    shutil.copyfile(history.path, database)
    return create_app(load_settings(env=station_env(data_dir, database)),
                      overrides={"TESTING": True})


def main(argv: list[str]) -> int:
    sessions = int(argv[0]) if argv else SESSIONS
    captures = int(argv[1]) if len(argv) > 1 else CAPTURES
    history = build_history(sessions, captures, use_cache=False)
    size_mb = history.path.stat().st_size / 1e6
    ok = history.build_seconds < BUILD_TARGET_SECONDS
    print(f"history: {sessions} sessions, {captures} captures built in "
          f"{history.build_seconds:.1f} s ({size_mb:.0f} MB at {history.path}); "
          f"target < {BUILD_TARGET_SECONDS:.0f} s: {'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
