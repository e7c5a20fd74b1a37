"""Sessions: list, create, rename, complete, delete and merge. Resolution of where new work
goes lives in session_resolver.py."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from scanner_app.models import (
    SCAN_ACTIVE_STATUSES,
    Capture,
    Scan,
    ScanSession,
    SessionStatus,
    StationState,
    Upload,
)
from scanner_app.models.session import COUNTERS
from scanner_app.platform.errors import BadRequest, Conflict, NotFound
from scanner_app.platform.extensions import db, dialect_insert
from scanner_app.platform.storage import current_storage, fsync_dir
from scanner_app.platform.web.converters import MAX_ID
from scanner_app.sessions import hooks, names
from scanner_app.sessions.day_end import (  # re-exported: the doctor completes past days
    complete_past_days as complete_past_days,
)
from scanner_app.sessions.day_end import idle_past_days as idle_past_days
from scanner_app.sessions.listing import (  # re-exported: other slices list sessions here
    PICKER_LIMIT as PICKER_LIMIT,
)
from scanner_app.sessions.listing import SessionPage as SessionPage
from scanner_app.sessions.listing import page_sessions as page_sessions
from scanner_app.sessions.listing import picker_context as picker_context
from scanner_app.sessions.listing import search_sessions as search_sessions
from scanner_app.sessions.listing import session_totals as session_totals
from scanner_app.sessions.record import mark_dirty
from scanner_app.sessions.resolver import current_manual_session_id, station_today
from scanner_app.sessions.totals import current_stamp as current_stamp
from scanner_app.sessions.totals import kept_under_stamp as kept_under_stamp

log = logging.getLogger("scanner.sessions")

MAX_NAME_LENGTH = names.MAX_NAME_LENGTH


def get_session(session_id: int) -> ScanSession:
    # An id no row can have (over PostgreSQL's INTEGER) is simply not there: never a 500.
    session = db.session.get(ScanSession, session_id) if 0 < session_id <= MAX_ID else None
    if session is None:
        raise NotFound(f"There is no session {session_id}. Pick one from the session list.")
    return session


def clean_name(raw: object) -> str:
    return names.normalise(raw)


def _ensure_name_free(name: str, except_id: int | None = None) -> None:
    # Compared casefolded in Python (SQLite's lower() folds ASCII only); the unique index on
    # lower(name) catches a racing writer.
    key = names.name_key(name)
    for session_id, other in db.session.execute(select(ScanSession.id, ScanSession.name)):
        if session_id != except_id and names.name_key(other) == key:
            raise Conflict(f"A session named '{other}' already exists; choose another name.",
                           code="name_in_use")


def _commit_or_name_conflict(name: str) -> None:
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # someone took the name between our check and our write
        raise Conflict(f"A session named '{name}' already exists; choose another name.",
                       code="name_in_use") from None


def set_current_session(session_id: int | None) -> None:
    """None means: new work goes to today's auto session."""
    if session_id is not None:
        get_session(session_id)
    table = StationState.__table__
    try:
        # One statement for the one station row: requests racing on a fresh station all land.
        db.session.execute(
            dialect_insert()(table).values(id=1, current_session_id=session_id)
            .on_conflict_do_update(index_elements=[table.c.id],
                                   set_={"current_session_id": session_id})
        )
        db.session.commit()
    except IntegrityError:  # the session was deleted between the check and the write
        db.session.rollback()
        raise NotFound(f"There is no session {session_id}. Pick one from the session "
                       "list.") from None


def current_session() -> tuple[str, ScanSession | None]:
    """("manual", session) or ("auto", today's auto session or None if not made yet)."""
    manual_id = current_manual_session_id()
    if manual_id is not None:
        return "manual", db.session.get(ScanSession, manual_id)
    today = db.session.scalar(
        select(ScanSession).where(ScanSession.kind == "auto", ScanSession.day == station_today())
    )
    return "auto", today


def create_manual_session(name: object, make_current: bool = True) -> ScanSession:
    name = clean_name(name)
    _ensure_name_free(name)
    session = ScanSession(kind="manual", day=station_today(), name=name,
                          status=SessionStatus.ACTIVE)
    db.session.add(session)
    db.session.flush()
    mark_dirty(session.id, create=True)
    _commit_or_name_conflict(name)
    if make_current:
        set_current_session(session.id)
    log.info("Created manual session %s (%r)", session.id, name)
    return session


def update_session(session_id: int, changes: dict) -> ScanSession:
    session = get_session(session_id)
    unknown = set(changes) - {"name", "status"}
    if unknown:
        raise BadRequest("Only 'name' and 'status' can be changed; leave out "
                         + ", ".join(f"'{key}'" for key in sorted(unknown)) + ".")
    if "name" in changes:
        name = changes["name"]
        if session.kind == "auto" and name == session.name:
            pass
        else:
            name = clean_name(name)
            _ensure_name_free(name, except_id=session.id)
            session.name = name
    if "status" in changes:
        status = changes["status"]
        if status not in tuple(SessionStatus):
            raise BadRequest("Status must be 'active' or 'completed'.", code="invalid_status")
        session.status = SessionStatus(status)
        if session.status.is_completed and current_manual_session_id() == session.id:
            # A finished trial stops receiving work; new scans go to today's session again.
            db.session.execute(update(StationState).where(StationState.id == 1)
                               .values(current_session_id=None))
    mark_dirty(session.id)
    _commit_or_name_conflict(session.name)
    return session


def _lock_sessions(session_ids: list[int]) -> None:
    """Take the write lock on these session rows before anything else (the order upload
    processing uses too), so jobs bumping their counters wait for us instead of racing.
    A no-op UPDATE locks the row on PostgreSQL and takes SQLite's write lock."""
    for session_id in sorted(session_ids):
        db.session.execute(
            update(ScanSession).where(ScanSession.id == session_id)
            .values(updated_at=ScanSession.updated_at)
        )


def _active_scan_id(session_ids: list[int]) -> int | None:
    return db.session.scalar(
        select(Scan.id).where(Scan.session_id.in_(session_ids),
                              Scan.status.in_(SCAN_ACTIVE_STATUSES))
    )


def delete_session(session_id: int) -> None:
    """Delete the row and its directory, or neither."""
    get_session(session_id)
    _lock_sessions([session_id])
    if _active_scan_id([session_id]) is not None:
        db.session.rollback()
        raise Conflict("A scan of this session is still queued, running or paused. "
                       "Cancel it first, then delete the session.", code="scan_running")
    hooks.run_before_delete(session_id)  # e.g. its reconstructions stop and go
    store = current_storage()
    root = store.session_dir(session_id)
    aside = None
    db.session.execute(delete(Capture).where(Capture.session_id == session_id))
    db.session.execute(delete(Upload).where(Upload.session_id == session_id))
    db.session.execute(delete(Scan).where(Scan.session_id == session_id))
    db.session.execute(
        update(StationState).where(StationState.current_session_id == session_id)
        .values(current_session_id=None)
    )
    db.session.execute(delete(ScanSession).where(ScanSession.id == session_id))
    try:
        if root.exists():
            aside = store.move_session_dir_aside(session_id)  # undone below if commit fails
        db.session.commit()
    except BaseException:
        db.session.rollback()
        if aside is not None:
            os.replace(aside, root)
        raise
    if aside is not None:
        store.remove_session_dir_path(aside)
    log.info("Deleted session %s and its directory", session_id)


def _plan_moves(src: Path, dst: Path) -> list[tuple[Path, Path]]:
    """Which entries move where. Scan and upload folders are named by globally unique ids,
    so they never clash; other files (exports) get a prefix when a name is taken."""
    moves: list[tuple[Path, Path]] = []
    for container in (
        "images/scans", "images/uploads", "metadata/scans", "metadata/thumbnails", "exports"
    ):
        folder = src / container
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            target = dst / container / entry.name
            if target.exists():
                target = dst / container / f"from-session-{src.name}-{entry.name}"
            if target.exists():
                raise Conflict(f"Cannot merge: {container}/{entry.name} exists in both sessions.")
            moves.append((entry, target))
    return moves


def merge_sessions(source_id: int, target_id: int) -> ScanSession:
    """Move files, captures, uploads and scans of `source_id` into `target_id`, then remove
    the source. On any failure database and disk are left as they were."""
    if source_id == target_id:
        raise BadRequest("A session cannot be merged into itself; pick another target.",
                         code="merge_into_self")
    get_session(source_id)
    target = get_session(target_id)
    _lock_sessions([source_id, target_id])
    if _active_scan_id([source_id, target_id]) is not None:
        db.session.rollback()
        raise Conflict("A scan of one of these sessions is still queued, running or paused. "
                       "Wait for it or cancel it, then merge.", code="scan_running")
    store = current_storage()
    src_dir, dst_dir = store.ensure_session_dir(source_id), store.ensure_session_dir(target_id)
    moves = _plan_moves(src_dir, dst_dir)

    for model in (Capture, Upload, Scan):
        db.session.execute(
            update(model).where(model.session_id == source_id).values(session_id=target_id)
        )
    # Summed in SQL under the row locks: no increment made meanwhile is lost.
    source_row = select(ScanSession).where(ScanSession.id == source_id).subquery()
    db.session.execute(
        update(ScanSession).where(ScanSession.id == target_id).values(
            **{c: getattr(ScanSession, c) + select(getattr(source_row.c, c)).scalar_subquery()
               for c in COUNTERS}
        )
    )
    db.session.execute(
        update(StationState).where(StationState.current_session_id == source_id)
        .values(current_session_id=target_id)
    )
    db.session.execute(delete(ScanSession).where(ScanSession.id == source_id))
    mark_dirty(target_id)

    done: list[tuple[Path, Path]] = []
    try:
        for src, dst in moves:
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.rename(src, dst)  # same filesystem: atomic per entry
            done.append((src, dst))
        for folder in {dst.parent for _, dst in done}:
            fsync_dir(folder)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        for src, dst in reversed(done):
            os.rename(dst, src)
        raise
    store.remove_session_dir(source_id)
    hooks.run_after_merge(target_id, [dst for _, dst in moves])
    log.info("Merged session %s into %s (%d entries moved)", source_id, target_id, len(moves))
    return target
