"""Counters summed over all sessions, and how many sessions there are, without summing every
session per request (issue 15): each process keeps the last sum, keyed by a "sessions
changed" stamp that every process shares.

The stamp is 16 random bytes in a file of the data dir (platform/storage.py names it),
overwritten in place after every commit that wrote the sessions table through an ORM Session
(counters, a new session, a delete, a merge, a doctor recount: any INSERT, UPDATE or DELETE
of `sessions`, and any ScanSession added, changed or deleted in a flush), and after every
commit that chose the current session (`station_state`) or changed the scan profiles or
station settings, so that what is kept under it may show those too (the dashboard's
current-session card and scan form); likewise after commits that write the logins and API
keys (each process keeps who a key or login cookie is under it: a revoked key or a deleted
login is refused on the very next request), and the scans (the dashboard's idle scan
card). A request reads
the stamp (one small file read) and sums again only when it changed since the last sum.

Why this is exact: a writer changes the stamp only after its commit, and a reader reads the
stamp before it sums (on a connection of its own, so no older snapshot of the request's
transaction is summed). Whatever commit the sum missed changes the stamp afterwards, so the
next request sums again. A reader that catches a stamp half overwritten keys its sum to a
value the file never holds again: that costs one extra sum, never a stale one.

Nothing is fsynced: the stamp only matters among processes running now (after a crash every
process starts with no sum). Overwriting in place needs no new disk block, so a full disk
does not stop it. Writes that bypass the ORM Session (someone's sqlite3 shell) are caught by
MAX_AGE_SECONDS. A missing stamp file is made before the sum; where it cannot be made,
nothing is cached.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import event, func, select
from sqlalchemy.orm import ORMExecuteState, Session

from scanner_app.config import current_settings
from scanner_app.models import (
    ApiKey,
    ProfileRow,
    Scan,
    ScanSession,
    StationSetting,
    StationState,
    User,
)
from scanner_app.models.session import COUNTERS
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import StorageManager
from scanner_app.platform.web.response_cache import StampedCache

T = TypeVar("T")

log = logging.getLogger("scanner.sessions")

MAX_AGE_SECONDS = 60.0  # a sum is redone at least this often, whatever the stamp says
STAMP_BYTES = 16
_CHANGED = "scanner.sessions_totals.changed"  # in Session.info: the transaction wrote sessions
# Tables whose writes change the stamp: sessions; station_state (which manual session is
# current) for the dashboard's current-session card; scan_profiles and station_settings (the
# profiles and the default one) for its scan form, both kept under the same stamp; users
# and api_keys for who a request is (accounts/auth.py); scans for the dashboard's idle scan
# card (scans/views.py; the scan job's heartbeat, written outside the ORM Session, does not
# change the stamp: that card is not kept while a scan is active).
_STAMPED = (ScanSession, StationState, ProfileRow, StationSetting, User, ApiKey, Scan)
_TABLES = frozenset(model.__tablename__ for model in _STAMPED)

# Built once (building it is most of its cost); summed from the index ix_sessions_counters.
_COUNT_AND_TOTALS = select(
    func.count(), *[func.coalesce(func.sum(getattr(ScanSession, c)), 0) for c in COUNTERS])

# (stamp path, engine) -> (stamp, monotonic time summed, count, totals)
_CACHE: dict[tuple[str, object], tuple[bytes, float, int, dict[str, int]]] = {}


_STAMP_PATHS: dict[Path, Path] = {}  # data dir -> its stamp file (looked up per request)


def _stamp_path() -> Path:
    data_dir = current_settings().data_dir
    path = _STAMP_PATHS.get(data_dir)
    if path is None:
        path = _STAMP_PATHS.setdefault(
            data_dir, StorageManager(data_dir).sessions_changed_path())
    return path


def read_stamp(path: Path) -> bytes | None:
    """The stamp's bytes; None when there is no stamp file (then nothing may be cached)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        return os.pread(fd, STAMP_BYTES, 0)
    finally:
        os.close(fd)


def bump_stamp(path: Path) -> None:
    """Tell every process that sessions changed. Never raises (logs instead): the commit
    is done; a stamp that could not be changed is caught up by MAX_AGE_SECONDS."""
    for key in list(_CACHE):  # a copy: other threads may add keys meanwhile
        if key[0] == str(path):
            _CACHE.pop(key, None)  # this process at least sums again
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, os.urandom(STAMP_BYTES), 0)
        finally:
            os.close(fd)
    except OSError:
        log.warning("Could not mark sessions as changed in %s; the totals shown may lag by "
                    "up to %d seconds", path, MAX_AGE_SECONDS, exc_info=True)


def current_stamp() -> tuple[str, bytes] | None:
    """(stamp file, its bytes) as of now, made first if missing; None where no stamp can be
    kept (then nothing built from the sessions table may be cached). Read it BEFORE reading
    what it guards (see platform/web/response_cache.py)."""
    path = _stamp_path()
    stamp = read_stamp(path)
    if stamp is None:
        bump_stamp(path)
        stamp = read_stamp(path)
    return None if stamp is None else (str(path), stamp)


def kept_under_stamp(cache: StampedCache[T], key: tuple, build: Callable[[], T]) -> T:
    """`build()`'s value, kept in `cache` per (station, *key) under the sessions-changed
    stamp: for what depends on the stamped tables alone, never on who asks."""
    stamp = current_stamp()  # read before the rows it guards
    full_key = (stamp[0] if stamp else None, db.engine, *key)
    kept = cache.get(full_key, stamp) if stamp else None
    if kept is not None:
        return kept
    if db.session().in_transaction():
        # A snapshot older than the stamp (an API key's lookup, say) could miss a change the
        # stamp already tells of: build from a fresh one, taken after the stamp.
        db.session.rollback()
        stamp = current_stamp()
    return cache.get_or_build(full_key, stamp, build)


def _sum() -> tuple[int, dict[str, int]]:
    # A connection of its own: a fresh snapshot, taken after the stamp was read.
    with db.engine.connect() as conn:
        row = conn.execute(_COUNT_AND_TOTALS).one()
    return int(row[0]), {name: int(value) for name, value in zip(COUNTERS, row[1:], strict=True)}


def count_and_totals() -> tuple[int, dict[str, int]]:
    """(how many sessions there are, their counters summed), summed again only when a
    session changed since this process last summed."""
    path = _stamp_path()
    key = (str(path), db.engine)
    stamp = read_stamp(path)
    if stamp is None:  # a station no session has changed on yet (or its stamp was removed)
        bump_stamp(path)  # before the sum below, so that sum is keyed to what it saw
        stamp = read_stamp(path)
    cached = _CACHE.get(key)
    now = time.monotonic()
    if (stamp is not None and cached is not None and cached[0] == stamp
            and now - cached[1] < MAX_AGE_SECONDS):
        return cached[2], dict(cached[3])
    count, totals = _sum()
    if stamp is not None:
        _CACHE[key] = (stamp, now, count, dict(totals))
    return count, totals


# --- noticing writes to the sessions table --------------------------------------------------

def mark_changed(session: Session | None = None) -> None:
    """This transaction changed sessions: bump the stamp once it commits. Writes through
    the ORM Session are noticed by themselves; call this only for anything else."""
    (session if session is not None else db.session).info[_CHANGED] = True


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in _TABLES:
        state.session.info[_CHANGED] = True


@event.listens_for(Session, "after_flush")
def _on_flush(session: Session, _context: object) -> None:
    if any(isinstance(obj, _STAMPED)
           for group in (session.new, session.dirty, session.deleted) for obj in group):
        session.info[_CHANGED] = True


@event.listens_for(Session, "after_commit")
def _on_commit(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        try:
            path = _stamp_path()
        except RuntimeError:  # no app context: no station whose totals could be cached
            return
        bump_stamp(path)


@event.listens_for(Session, "after_rollback")
def _on_rollback(session: Session) -> None:
    session.info.pop(_CHANGED, None)
