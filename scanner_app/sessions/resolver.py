"""The one session resolver. Every entry point (web, API, button, CLI) calls it once, where a
request enters, and passes the resulting id on; jobs never resolve or create sessions.

Order: an explicit id, else the current manual session, else today's auto session. Today's
auto session is written with INSERT ... ON CONFLICT against the partial unique index
uq_sessions_auto_day, so the database (not a select-then-insert) decides which row wins.

Fast path (issue 15): one indexed SELECT finds the session new work goes to and its status.
When that session is active and this process has already seen its directory complete, that
is the answer: no write, no lock, no filesystem call. Anything else (no row for today, a
completed session, a directory this process has not seen yet) takes the slow path below,
where the upsert and the row lock decide as before, so racing processes still get exactly
one auto session per day. Session ids are never reused (sqlite_autoincrement, sequences), so
a remembered directory can only disappear with its row, which the SELECT would not find.

The request that inserts a new day's auto session (once a day) then completes the idle auto
sessions of earlier days (sessions/day_end.py), in a transaction of its own after its commit;
no other resolution pays for that.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import case, select, text, update
from sqlalchemy.exc import IntegrityError

from scanner_app.config import current_settings
from scanner_app.models import ScanSession, SessionStatus, StationState
from scanner_app.models.transitions import transition
from scanner_app.platform.clock import utcnow
from scanner_app.platform.errors import NotFound
from scanner_app.platform.extensions import db, dialect_insert
from scanner_app.platform.storage import current_storage
from scanner_app.sessions import hooks
from scanner_app.sessions.day_end import complete_past_days_quietly
from scanner_app.sessions.record import mark_dirty

log = logging.getLogger("scanner.sessions")

AUTO_NAME_PREFIX = "Session "

# Directories (with their session.json) this process has seen complete, per station:
# {(database url, data dir): {session id, ...}}. Dropped for a session that is deleted
# here; a session deleted elsewhere is not found by the fast path's SELECT anyway.
_known_dirs: dict[tuple[str, Path], set[int]] = {}


def _known_dirs_here() -> set[int]:
    settings = current_settings()
    return _known_dirs.setdefault((settings.database_url, settings.data_dir), set())


@hooks.before_delete
def _forget_dir(session_id: int) -> None:
    for known in _known_dirs.values():
        known.discard(int(session_id))


def forget_known_dirs() -> None:
    """Forget every remembered directory: the next resolution of each session looks at the
    disk again (for tests that remove folders behind the station's back)."""
    _known_dirs.clear()


def auto_session_name(day: date) -> str:
    return f"{AUTO_NAME_PREFIX}{day.isoformat()}"


def station_today(now: datetime | None = None) -> date:
    """The calendar day in SCANNER_TIMEZONE (the system's zone when unset)."""
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(current_settings().timezone).date()


def current_manual_session_id() -> int | None:
    return db.session.scalar(select(StationState.current_session_id).where(StationState.id == 1))


def _reactivate(session_id: int) -> bool:
    """completed -> active in one statement; True when this call changed it."""
    return transition(ScanSession, session_id, SessionStatus.ACTIVE,
                      from_=SessionStatus.COMPLETED, updated_at=utcnow())


def _lock(session_id: int) -> bool:
    """Take the session row's lock for this transaction (the lock delete and merge take
    first), so neither can remove it until this transaction commits; False when it is gone."""
    result = db.session.execute(
        update(ScanSession).where(ScanSession.id == session_id)
        .values(updated_at=ScanSession.updated_at)
    )
    return result.rowcount == 1


def _upsert_auto_session(day: date) -> tuple[int, bool, bool]:
    """Insert today's auto session or take the existing one, whatever its status.

    Returns (id, created, reactivated)."""
    table = ScanSession.__table__
    now = utcnow()
    stmt = dialect_insert()(table).values(
        kind="auto",
        day=day,
        name=auto_session_name(day),
        status=SessionStatus.ACTIVE,
        files_count=0,
        captures_count=0,
        valid_count=0,
        invalid_count=0,
        scans_count=0,
        created_at=now,
        updated_at=now,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.day],
        # Literal SQL, matching the index predicate exactly (see models/session.py).
        index_where=text("kind = 'auto'"),
        set_={
            "status": SessionStatus.ACTIVE,
            "updated_at": case((table.c.status == SessionStatus.COMPLETED, now),
                               else_=table.c.updated_at),
        },
    ).returning(table.c.id, table.c.created_at, table.c.updated_at)
    row = db.session.execute(stmt).one()
    created = row.created_at == now
    reactivated = not created and row.updated_at == now
    return row.id, created, reactivated


def _upsert_auto_session_retrying(day: date, attempts: int = 5) -> tuple[int, bool, bool]:
    """PostgreSQL arbitrates ON CONFLICT only on the day index. A racing insert of the same
    day can first trip the *name* unique index (same "Session <day>" name) and raise instead.
    The racer has committed by then, so a retry finds its row through ON CONFLICT (day)."""
    for attempt in range(attempts):
        try:
            with db.session.begin_nested():
                return _upsert_auto_session(day)
        except IntegrityError:
            if attempt == attempts - 1:
                raise
            log.info("Session resolver: lost an insert race for %s; retrying", day)
    raise AssertionError("unreachable")


# The fast path's one SELECT, as driver SQL: compiled SQLAlchemy statements cost more per call
# than the query itself (issue 15). {p} is the driver's positional parameter marker.
_EXPLICIT_SQL = "SELECT id, status FROM sessions WHERE id = {p}"
# The manual session chosen as current, else today's auto session. The auto predicate is
# literal, as in the index (models/session.py): SQLite uses the partial index
# uq_sessions_auto_day only for a WHERE that implies its own.
_NEW_WORK_SQL = ("SELECT id, status FROM sessions WHERE id = COALESCE("
                 "(SELECT current_session_id FROM station_state WHERE id = 1), "
                 "(SELECT id FROM sessions WHERE kind = 'auto' AND day = {p}))")


def _fast_path(session_id: int | None, day: date) -> int | None:
    """The session's id when it is active and its directory is known complete; else None.
    Reads on the caller's connection; for SQLite no transaction is begun by a SELECT, and
    on PostgreSQL it is READ COMMITTED like every other statement of the request."""
    known = _known_dirs_here()
    if not known:
        return None
    conn = db.session.connection()
    sqlite = conn.dialect.name == "sqlite"
    marker = "?" if sqlite else "%s"
    if session_id is not None:
        sql, params = _EXPLICIT_SQL.format(p=marker), (int(session_id),)
    else:
        sql, params = _NEW_WORK_SQL.format(p=marker), (day.isoformat() if sqlite else day,)
    row = conn.exec_driver_sql(sql, params).first()
    if row is None or row[0] not in known or row[1] != SessionStatus.ACTIVE:
        return None
    return row[0]


def resolve_session(session_id: int | None = None, *, now: datetime | None = None) -> int:
    """Return the id of the session new work goes to, committing whatever that took (the
    fast path takes one read and commits nothing).

    Raises NotFound for an unknown explicit id (also one deleted or merged away meanwhile).
    The directory of an existing session is made (idempotently) while this transaction holds
    the row's lock; a new session's after the database has committed the row."""
    day = station_today(now)
    fast = _fast_path(session_id, day)
    if fast is not None:  # wrote nothing, so commits nothing: the caller commits its work
        log.debug("Session resolver: reused session %s", fast)
        return fast
    for _attempt in range(3):
        created = reactivated = False
        if session_id is not None:
            resolved, how = session_id, "requested"
        elif (manual_id := current_manual_session_id()) is not None:
            resolved, how = manual_id, "current"
        else:
            resolved, created, reactivated = _upsert_auto_session_retrying(day)
            how = "today's auto"
            break
        reactivated = _reactivate(resolved)
        if _lock(resolved):
            break
        # Deleted (or merged away) before this request could hold it.
        db.session.rollback()
        if session_id is not None:
            raise NotFound(f"There is no session {session_id}. Pick one from the session list.")
        # The current session went a moment ago (its delete also cleared 'current'): again.
    else:
        raise NotFound("The current session was just deleted. Send the files again.")
    store = current_storage()
    if not (created or reactivated):
        # While this transaction holds the row, so a delete that comes after (and renames the
        # folder aside) never finds a folder made again behind its back.
        store.ensure_session_dir(resolved)
    record_missing = not store.session_record_path(resolved).exists()
    if created or reactivated or record_missing:
        mark_dirty(resolved, create=True)  # written (folder made) once the row is committed
    db.session.commit()
    if not (created or reactivated or record_missing):
        _known_dirs_here().add(resolved)  # folder and record seen: next time, the fast path
    if created:
        complete_past_days_quietly(day)  # a new day began: the ones before it are over
    if created or reactivated:
        verb = "created new" if created else "reactivated"
        log.info("Session resolver: %s %s session %s", verb, how, resolved)
    else:
        log.debug("Session resolver: reused existing %s session %s", how, resolved)
    return resolved
