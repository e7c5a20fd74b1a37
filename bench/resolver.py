"""Benchmark: session resolution from 32 processes at once (issue 15).

Figure: resolve_session() calls per second, summed over BENCH_RESOLVER_PROCS (32) forked
processes, each in its own app and app context, all resolving today's auto session for
BENCH_RESOLVER_SECONDS (4) after a common start.
Baseline, same run, same database file or server, same processes: the bare minimum a
database-arbitrated resolver does, `INSERT ... ON CONFLICT DO NOTHING` into the sessions
table (against its partial unique index) + `SELECT id` + COMMIT, through the raw driver.
Target: ratio >= 0.5, on SQLite and on PostgreSQL. PostgreSQL is skipped, with the reason
printed, when BENCH_PG_URL (default: the test suite's server) is unreachable.

Run alone: python -m bench resolver
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sqlite3
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

TARGET = 0.5
PROCS = int(os.environ.get("BENCH_RESOLVER_PROCS", "32"))
SECONDS = float(os.environ.get("BENCH_RESOLVER_SECONDS", "4"))
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
DAY = date(2026, 5, 4)

INSERT = ("INSERT INTO sessions (kind, day, name, status, files_count, captures_count, "
          "valid_count, invalid_count, scans_count, created_at, updated_at) "
          "VALUES ('auto', {p}, {p}, 'active', 0, 0, 0, 0, 0, {p}, {p}) "
          "ON CONFLICT DO NOTHING")
SELECT = "SELECT id FROM sessions WHERE kind = 'auto' AND day = {p}"


def _env(data_dir: Path, database_url: str) -> dict[str, str]:
    return {"SCANNER_DATA_DIR": str(data_dir), "SCANNER_DATABASE_URL": database_url,
            "SCANNER_HAL": "mock", "SCANNER_TIMEZONE": "UTC"}


def _bare_connection(database_url: str):
    """The raw driver connection and its parameter marker."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(url.database, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn, "?"
    import psycopg

    conn = psycopg.connect(url.set(drivername="postgresql").render_as_string(
        hide_password=False))
    return conn, "%s"


def _bare_loop(database_url: str, start_at: float, end_at: float) -> int:
    conn, p = _bare_connection(database_url)
    insert, select = INSERT.format(p=p), SELECT.format(p=p)
    stamp = datetime(2026, 5, 4, 12, 0)
    args = (DAY.isoformat(), f"Session {DAY.isoformat()}", stamp, stamp)
    if p == "?":
        args = (DAY.isoformat(), f"Session {DAY.isoformat()}", str(stamp), str(stamp))
    while time.time() < start_at:
        time.sleep(0.001)
    calls = 0
    while time.time() < end_at:
        cursor = conn.cursor()
        cursor.execute(insert, args)
        cursor.execute(select, (args[0],))
        cursor.fetchone()
        conn.commit()
        calls += 1
    conn.close()
    return calls


def _resolver_loop(env: dict[str, str], start_at: float, end_at: float) -> int:
    from scanner_app import create_app
    from scanner_app.config import load_settings
    from scanner_app.platform.extensions import db
    from scanner_app.sessions.resolver import resolve_session

    app = create_app(load_settings(env=env))
    calls = 0
    with app.app_context():
        resolve_session(now=NOW)  # this process's first call: it finds (or makes) the day's row
        while time.time() < start_at:
            time.sleep(0.001)
        while time.time() < end_at:
            resolve_session(now=NOW)
            calls += 1
        db.session.remove()
        db.engine.dispose()
    return calls


def _child(kind: str, env: dict[str, str], start_at: float, end_at: float, results) -> None:
    try:
        if kind == "bare":
            calls = _bare_loop(env["SCANNER_DATABASE_URL"], start_at, end_at)
        else:
            calls = _resolver_loop(env, start_at, end_at)
        results.put(("ok", calls))
    except Exception as exc:  # noqa: BLE001 - reported by the parent
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def _rate(kind: str, env: dict[str, str]) -> float:
    """Calls per second summed over PROCS processes in a SECONDS window they share."""
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    start_at = time.time() + 3.0 + PROCS * 0.25  # time for every child to build its app
    end_at = start_at + SECONDS
    procs = [ctx.Process(target=_child, args=(kind, env, start_at, end_at, results))
             for _ in range(PROCS)]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=start_at - time.time() + SECONDS + 120) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    errors = [detail for status, detail in outcomes if status == "error"]
    if errors:
        raise RuntimeError(f"{len(errors)} {kind} process(es) failed: {errors[0]}")
    late = time.time() > end_at + 60
    if late:
        print(f"  warning: {kind} processes finished long after the window")
    return sum(calls for _, calls in outcomes) / SECONDS


def _prepare(data_dir: Path, database_url: str) -> None:
    from flask_migrate import upgrade

    from scanner_app import create_app
    from scanner_app.config import load_settings
    from scanner_app.platform.extensions import db

    app = create_app(load_settings(env=_env(data_dir, database_url)))
    with app.app_context():
        upgrade()
        db.session.remove()
        db.engine.dispose()  # nothing of this connection may cross the fork


def _measure(name: str, data_dir: Path, database_url: str) -> bool:
    _prepare(data_dir, database_url)
    env = _env(data_dir, database_url)
    bare = _rate("bare", env)
    resolver = _rate("resolver", env)
    ratio = resolver / bare if bare else 0.0
    ok = ratio >= TARGET
    print(f"  {name:<10} resolver {resolver:9.0f} calls/s   bare upsert+select "
          f"{bare:9.0f} calls/s   ratio {ratio:5.2f}   target >= {TARGET}   "
          f"{'OK' if ok else 'MISSED'}", flush=True)
    return ok


def _pg_database() -> tuple[str | None, str]:
    """A fresh database on the PostgreSQL server, or (None, why not)."""
    import sqlalchemy as sa

    try:
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        name = f"bench_resolver_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means: skip PostgreSQL
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(
        hide_password=False), ""


def _drop_pg(url: str) -> None:
    import sqlalchemy as sa

    name = sa.engine.make_url(url).database
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main(argv: list[str] | None = None) -> int:
    print(f"session resolution: {PROCS} processes, {SECONDS:.0f} s each, "
          f"{os.cpu_count()} CPU(s)", flush=True)
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-resolver-") as tmp:
        data_dir = Path(tmp) / "sqlite"
        data_dir.mkdir()
        ok &= _measure("SQLite", data_dir, f"sqlite:///{data_dir / 'scanner.db'}")
        pg_url, why = _pg_database()
        if pg_url is None:
            print(f"  PostgreSQL skipped: {PG_ADMIN_URL} is unreachable ({why})")
        else:
            try:
                data_dir = Path(tmp) / "postgres"
                data_dir.mkdir()
                ok &= _measure("PostgreSQL", data_dir, pg_url)
            finally:
                _drop_pg(pg_url)
    return 0 if ok else 1


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
