"""Race: many processes resolve today's session at the same instant, over several days.

The invariant: exactly one auto session per day and exactly one directory per session,
and every counter increment is kept. The same harness run with a naive select-then-insert
resolver (the bug of earlier systems) must break the invariant, which proves the test can
catch it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from scanner_app import create_app
from scanner_app.config import load_settings
from scanner_app.models import ScanSession
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import current_storage
from scanner_app.sessions.counters import bump_session_counters
from scanner_app.sessions.resolver import (
    auto_session_name,
    resolve_session,
    station_today,
)
from tests.conftest import build_app, station_env

PROCESSES = 16
DAYS = 4
RESOLUTIONS_PER_DAY = 5
FIRST_DAY = datetime(2026, 3, 28, 9, 0, tzinfo=UTC)


def naive_resolve(now: datetime) -> int:
    """How earlier systems did it: look for an active auto session, else make a directory
    and insert one. Between the look and the insert the request did other work (the
    directory, its metadata) — the moment the other requests were looking too."""
    day = station_today(now)
    found = db.session.scalar(
        select(ScanSession.id).where(ScanSession.kind == "auto", ScanSession.day == day,
                                     ScanSession.status == "active")
    )
    if found is not None:
        return found
    import time

    time.sleep(0.02)  # the other work of the old request (see docstring)
    session = ScanSession(kind="auto", day=day, name=f"{auto_session_name(day)} {os.getpid()}",
                          status="active")
    db.session.add(session)
    db.session.commit()
    current_storage().ensure_session_dir(session.id)
    return session.id


def _worker(env: dict, naive: bool, barrier, results) -> None:
    app = create_app(load_settings(env=env))
    resolver = naive_resolve if naive else (lambda now: resolve_session(now=now))
    seen: list[tuple[str, int]] = []
    try:
        with app.app_context():
            for day_index in range(DAYS):
                now = FIRST_DAY + timedelta(days=day_index)
                barrier.wait(timeout=60)  # everyone starts the day at the same instant
                for _ in range(RESOLUTIONS_PER_DAY):
                    session_id = resolver(now)
                    bump_session_counters(session_id, captures_count=1)
                    db.session.commit()
                    seen.append((now.date().isoformat(), session_id))
            db.engine.dispose()
        results.put(("ok", seen))
    except Exception as exc:  # report, don't hang the parent
        barrier.abort()
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def run_race(data_dir: Path, database_url: str, naive: bool) -> dict:
    env = station_env(data_dir, SCANNER_DATABASE_URL=database_url)
    ctx = mp.get_context("fork")  # quick to start; each child builds its own app and engine
    barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(env, naive, barrier, results))
             for _ in range(PROCESSES)]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=180) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    errors = [detail for status, detail in outcomes if status == "error"]
    assert not errors, errors
    return {"seen": [pair for _, seen in outcomes for pair in seen]}


def invariant_violations(app, data_dir: Path, seen: list[tuple[str, int]]) -> list[str]:
    problems = []
    with app.app_context():
        autos = db.session.scalars(select(ScanSession).where(ScanSession.kind == "auto")).all()
        all_ids = set(db.session.scalars(select(ScanSession.id)))
    per_day: dict[str, list[ScanSession]] = {}
    for session in autos:
        per_day.setdefault(session.day.isoformat(), []).append(session)
    for day, sessions in sorted(per_day.items()):
        if len(sessions) != 1:
            problems.append(f"{day}: {len(sessions)} auto sessions")
    if len(per_day) != DAYS:
        problems.append(f"{len(per_day)} days have sessions, expected {DAYS}")
    for day, sessions in per_day.items():
        if len(sessions) == 1 and sessions[0].captures_count != PROCESSES * RESOLUTIONS_PER_DAY:
            problems.append(f"{day}: counter {sessions[0].captures_count} lost increments")
    ids_per_day: dict[str, set[int]] = {}
    for day, session_id in seen:
        ids_per_day.setdefault(day, set()).add(session_id)
    for day, ids in ids_per_day.items():
        if len(ids) != 1:
            problems.append(f"{day}: callers were given sessions {sorted(ids)}")
    dirs = {int(p.name) for p in (data_dir / "sessions").iterdir() if p.name.isdigit()}
    if dirs != all_ids:
        problems.append(f"directories {sorted(dirs)} != sessions {sorted(all_ids)}")
    return problems


@pytest.fixture
def race_app(data_dir, database_url):
    app = build_app(data_dir, database_url)
    with app.app_context():
        db.engine.dispose()  # no connection may be shared with forked children
    return app


def test_one_auto_session_per_day_under_a_process_race(race_app, data_dir, database_url):
    outcome = run_race(data_dir, database_url, naive=False)
    assert invariant_violations(race_app, data_dir, outcome["seen"]) == []


def test_naive_select_then_insert_is_caught(race_app, data_dir, database_url):
    # The old schema had no partial unique index; with it, the database would refuse.
    with race_app.app_context():
        db.session.execute(text("DROP INDEX uq_sessions_auto_day"))
        db.session.commit()
        db.engine.dispose()
    outcome = run_race(data_dir, database_url, naive=True)
    problems = invariant_violations(race_app, data_dir, outcome["seen"])
    assert any("auto sessions" in p for p in problems), problems


def _set_current_worker(env: dict, target: int | None, barrier, results) -> None:
    from scanner_app.sessions.service import set_current_session

    app = create_app(load_settings(env=env))
    try:
        with app.app_context():
            barrier.wait(timeout=60)
            set_current_session(target)
            db.engine.dispose()
        results.put(("ok", target))
    except Exception as exc:  # report, don't hang the parent
        barrier.abort()
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def test_choosing_the_current_session_races_safely_on_a_fresh_station(
        race_app, data_dir, database_url):
    """The station row does not exist yet: every racer's choice must land (no 500)."""
    from scanner_app.models import StationState
    from scanner_app.sessions.service import create_manual_session

    with race_app.app_context():
        ids = [create_manual_session(f"Trial {i}", make_current=False).id for i in range(3)]
        assert db.session.get(StationState, 1) is None
        db.engine.dispose()
    env = station_env(data_dir, SCANNER_DATABASE_URL=database_url)
    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(8), ctx.Queue()
    targets = [ids[i % 3] if i % 2 else None for i in range(8)]
    procs = [ctx.Process(target=_set_current_worker, args=(env, t, barrier, results))
             for t in targets]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    assert [o for o in outcomes if o[0] == "error"] == []
    with race_app.app_context():
        assert db.session.get(StationState, 1).current_session_id in {None, *ids}
