"""A day's auto session is completed once its calendar day (SCANNER_TIMEZONE) is over, so that
the lists and pickers of active sessions do not grow for years (issue 15).

When: where today's auto session is inserted (the resolver, once a day), when the web server
starts (`scanner run`, `scanner web`), and on `scanner doctor --repair`. No daemon of its own.

What is never completed: a manual session; the session a person made current; a session with
work under way (a scan queued, running or paused, an upload still processing, a
reconstruction queued or running). A busy one is completed at the next of those moments
after it went idle. New work for a completed session reactivates it (sessions/counters.py,
under the row lock its transaction takes first), so work started into yesterday's session at
midnight never lands in a completed one.

Races: the candidate rows are locked first, in id order (PostgreSQL: FOR NO KEY UPDATE, the
lock an UPDATE takes; the order delete and merge lock rows in), and the completing UPDATE is a
later statement, so under READ COMMITTED it sees every scan or upload committed by a
transaction that held one of those rows. SQLite has one writer at a time: the UPDATE runs
under the database's write lock and sees everything committed before it.
"""

from __future__ import annotations

import logging
from datetime import date

import sqlalchemy as sa
from flask import Flask
from sqlalchemy import exists, select
from sqlalchemy.exc import SQLAlchemyError

from scanner_app.models import (
    RECONSTRUCTION_ACTIVE,
    SCAN_ACTIVE,
    Reconstruction,
    Scan,
    ScanSession,
    SessionStatus,
    StationState,
    Upload,
    UploadStatus,
)
from scanner_app.models.transitions import transition_where
from scanner_app.platform.clock import utcnow
from scanner_app.platform.extensions import db
from scanner_app.sessions.record import mark_dirty

log = logging.getLogger("scanner.sessions")

BATCH = 500  # ids per UPDATE (SQLite allows 32766 bound parameters in one statement)


def _past_auto(today: date) -> list[sa.ColumnElement[bool]]:
    return [ScanSession.kind == "auto", ScanSession.day < today,
            ScanSession.status == SessionStatus.ACTIVE]


def _idle() -> list[sa.ColumnElement[bool]]:
    """No work under way in the session, and nobody chose it as the current session."""
    return [
        ~exists().where(StationState.current_session_id == ScanSession.id),
        ~exists().where(Scan.session_id == ScanSession.id, Scan.status.in_(SCAN_ACTIVE)),
        ~exists().where(Upload.session_id == ScanSession.id,
                        Upload.status == UploadStatus.PROCESSING),
        ~exists().where(Reconstruction.session_id == ScanSession.id,
                        Reconstruction.status.in_(RECONSTRUCTION_ACTIVE)),
    ]


def idle_past_days(today: date) -> list[int]:
    """The ids `complete_past_days(today)` would complete now (a read; for the doctor)."""
    return list(db.session.scalars(
        select(ScanSession.id).where(*_past_auto(today), *_idle()).order_by(ScanSession.id)))


def complete_past_days(today: date) -> list[int]:
    """Complete every idle auto session of a day before `today`, in a transaction of its own
    (committed here: call it with no work of your own pending); their ids. Their
    session.json records are rewritten after the commit."""
    candidates = db.session.scalars(
        select(ScanSession.id).where(*_past_auto(today)).order_by(ScanSession.id)
        .with_for_update(key_share=True)  # FOR NO KEY UPDATE; SQLite: a plain read
    ).all()
    if not candidates:
        db.session.commit()  # ends the read (and releases nothing: no row matched)
        return []
    # The chosen session: a request choosing one now waits for this commit, or we for its.
    db.session.execute(select(StationState.id).with_for_update())
    completed: list[int] = []
    now = utcnow()
    for start in range(0, len(candidates), BATCH):  # years of days: bounded IN lists
        completed += transition_where(
            ScanSession, SessionStatus.COMPLETED, from_=SessionStatus.ACTIVE,
            where=[ScanSession.id.in_(candidates[start:start + BATCH]), *_past_auto(today),
                   *_idle()],
            updated_at=now,
        )
    for session_id in completed:
        mark_dirty(session_id)
    db.session.commit()
    if completed:
        log.info("Completed the auto sessions of past days: %s",
                 ", ".join(str(i) for i in completed))
    return completed


def complete_past_days_quietly(today: date) -> list[int]:
    """`complete_past_days`, but a failure is logged, never raised: the caller's own work is
    done, and the next opportunity completes what was left."""
    try:
        return complete_past_days(today)
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.warning("Could not complete the auto sessions of past days (%s); trying again at "
                    "the next new day or start", str(exc).splitlines()[0])
        return []


def complete_past_days_at_startup(app: Flask) -> None:
    """Where the web server starts: the days that ended while the station was off. Silent on
    a database without tables yet (before `scanner db upgrade`)."""
    from scanner_app.sessions.resolver import station_today

    try:
        with app.app_context():
            if not sa.inspect(db.engine).has_table(ScanSession.__tablename__):
                return
            complete_past_days_quietly(station_today())
    except Exception as exc:  # noqa: BLE001 - starting must not fail because of this
        log.warning("Could not complete the auto sessions of past days at start: %s", exc)
