"""`scanner doctor`: compare the database with the disk, find stale scans, check free space.

Each check returns findings written for the person at the station. With `repair=True` the
safe fixes are made: missing session folders are created, counters recounted, stale scans
marked interrupted, leftovers of deleted sessions removed, a folder renamed aside by a
delete that never committed is put back. A folder that belongs to no session is only
reported, never deleted: it may hold someone's only copy of their images.

This is the one place that counts rows to check the session counters (everywhere else they
are kept by increments, see services/counters.py).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import case, func, select, update

from scanner_app.config import Settings, current_settings
from scanner_app.models import (
    SCAN_ACTIVE,
    Capture,
    Scan,
    ScanSession,
    ScanStatus,
    Upload,
    UploadStatus,
)
from scanner_app.models.session import COUNTERS
from scanner_app.platform.clock import utcnow
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import StorageManager
from scanner_app.sessions import record as session_records
from scanner_app.station.doctor_guard import guarded, path_is_file
from scanner_app.station.doctor_sessions import check_past_auto_sessions
from scanner_app.station.doctor_space import check_free_space
from scanner_app.station.doctor_space import mb_text as _mb
from scanner_app.station.doctor_uploads import check_stuck_uploads

# Left by services/sessions.delete_session (renamed aside, then the commit) and by
# StorageManager.remove_session_dir (renamed aside after the commit).
LEFTOVER = re.compile(r"^\.(deleting|deleted)-(\d+)(?:-[0-9a-f]+)?$")
# A leftover younger than this may belong to a delete that is running right now.
LEFTOVER_MIN_AGE_SECONDS = 60.0
MISSING_EXAMPLES = 3


@dataclass
class Finding:
    severity: str  # "ok", "warning" or "problem"
    message: str
    repaired: bool = False

    @property
    def open_problem(self) -> bool:
        return self.severity == "problem" and not self.repaired

    @property
    def label(self) -> str:
        if self.repaired:
            return "FIXED"
        return {"ok": "OK", "warning": "NOTE", "problem": "PROBLEM"}[self.severity]


@dataclass
class Report:
    repair: bool
    findings: list[Finding] = field(default_factory=list)
    # Sessions whose folder a delete renamed aside moments ago: leave their folders alone.
    in_flux: set[int] = field(default_factory=set)

    def add(self, severity: str, message: str, repaired: bool = False) -> None:
        self.findings.append(Finding(severity, message, repaired))

    @property
    def open_problems(self) -> list[Finding]:
        return [f for f in self.findings if f.open_problem]

    @property
    def ok(self) -> bool:
        return not self.open_problems

    def summary(self) -> str:
        left = len(self.open_problems)
        fixed = sum(1 for f in self.findings if f.repaired)
        if left == 0:
            done = f" ({fixed} fixed)" if fixed else ""
            return f"Everything is in order{done}."
        hint = "" if self.repair else (
            " Run 'scanner doctor --repair' to fix what can be fixed safely."
        )
        counted = "1 problem needs" if left == 1 else f"{left} problems need"
        return f"{counted} attention.{hint}"


def _settings() -> Settings:
    return current_settings()


def _describe(session: ScanSession) -> str:
    return f"Session {session.id} ('{session.name}')"


def _folder_size(path: Path) -> tuple[int, int]:
    files = size = 0
    for dirpath, _dirs, names in os.walk(path):
        for name in names:
            try:
                size += (Path(dirpath) / name).lstat().st_size
                files += 1
            except OSError:
                pass
    return files, size


def _files(count: int) -> str:
    return f"{count} file{'s' if count != 1 else ''}"


def _active_session_ids() -> set[int]:
    busy = set(db.session.scalars(
        select(Scan.session_id).where(Scan.status.in_(SCAN_ACTIVE))))
    busy |= set(db.session.scalars(
        select(Upload.session_id).where(Upload.status == UploadStatus.PROCESSING)))
    return busy


# --- disk against database ---------------------------------------------------------------

def check_leftovers(report: Report, store: StorageManager, sessions: dict[int, ScanSession]
                    ) -> None:
    if not store.sessions_root.is_dir():
        return
    now = time.time()
    for entry in sorted(store.sessions_root.iterdir()):
        match = LEFTOVER.match(entry.name)
        if not match or not entry.is_dir() or entry.is_symlink():
            continue
        session_id = int(match.group(2))
        try:
            age = now - entry.stat().st_ctime
        except OSError:
            continue
        if age < LEFTOVER_MIN_AGE_SECONDS:
            report.in_flux.add(session_id)
            report.add("warning", f"The folder {entry} is being deleted right now (renamed "
                                  "moments ago); it was left alone. Run the doctor again in a "
                                  "minute if it stays.")
            continue
        session = sessions.get(session_id)
        home = store.session_dir(session_id)
        if session is not None and not home.exists():
            # The delete was renamed aside but its database commit never happened.
            message = (f"{_describe(session)} still exists in the database, but its folder "
                       f"was renamed aside to {entry.name} by a delete that did not finish.")
            if report.repair:
                os.replace(entry, home)
                report.add("problem", message + " The folder was put back.", repaired=True)
            else:
                report.add("problem", message + " --repair puts it back.")
        elif session is not None:
            files, size = _folder_size(entry)
            report.add("problem", f"The folder {entry} ({_files(files)}, {_mb(size)}) looks like "
                                  f"the leftover of a delete, but {_describe(session)} and its "
                                  "folder both exist. It was left alone: look inside and "
                                  "delete it yourself if you do not need it.")
        else:
            files, size = _folder_size(entry)
            message = (f"The folder {entry.name} ({_files(files)}, {_mb(size)}) is what was left "
                       f"of deleted session {session_id}.")
            if report.repair:
                shutil.rmtree(entry, ignore_errors=True)
                report.add("problem", message + " It was removed.", repaired=True)
            else:
                report.add("problem", message + " --repair removes it.")


def check_session_dirs(report: Report, store: StorageManager,
                       sessions: dict[int, ScanSession]) -> None:
    for session in sessions.values():
        root = store.session_dir(session.id)
        if session.id in report.in_flux:
            continue  # see check_leftovers: a delete of it may be under way
        if not root.is_dir():
            message = f"{_describe(session)} has no folder on disk (expected {root})."
            if report.repair:
                session_records.write_records({session.id: True})
                report.add("problem", message + " An empty folder was created for it.",
                           repaired=True)
            else:
                report.add("problem", message + " --repair creates an empty one.")
            continue
        if not store.session_record_path(session.id).is_file():
            message = f"{_describe(session)} has no metadata/session.json."
            if report.repair:
                session_records.write_records({session.id: True})
                report.add("warning", message + " It was written again.", repaired=True)
            else:
                report.add("warning", message + " --repair writes it again.")

    on_disk = set(store.session_dir_ids())
    for session_id in sorted(on_disk - set(sessions)):
        folder = store.session_dir(session_id)
        files, size = _folder_size(folder)
        report.add("problem", f"The folder {folder} ({_files(files)}, {_mb(size)}) belongs to no "
                              "session in the database. It was left alone because it may hold "
                              "your images: move it somewhere safe, or delete it if you do not "
                              "need it.")


def check_capture_files(report: Report, store: StorageManager,
                        sessions: dict[int, ScanSession]) -> None:
    missing: dict[int, list[str]] = {}
    totals: dict[int, int] = {}
    rows = db.session.execute(
        select(Capture.session_id, Capture.path).order_by(Capture.session_id, Capture.id))
    for session_id, rel in rows:
        totals[session_id] = totals.get(session_id, 0) + 1
        if not path_is_file(report, store.session_dir(session_id) / rel):
            missing.setdefault(session_id, []).append(rel)
    for session_id, paths in missing.items():
        session = sessions.get(session_id)
        who = _describe(session) if session else f"Session {session_id}"
        examples = ", ".join(paths[:MISSING_EXAMPLES]) + (", ..." if len(paths) > 3 else "")
        report.add("problem", f"{who}: {len(paths)} of {totals[session_id]} images recorded in "
                              f"the database are missing on disk ({examples}). Restore them "
                              "from a backup if you have one; the doctor does not remove "
                              "their records.")


# --- counters ------------------------------------------------------------------------------

def counted_from_rows() -> dict[int, dict[str, int]]:
    """What each session's counters should be, counted from the rows."""
    counts: dict[int, dict[str, int]] = {}

    def slot(session_id: int) -> dict[str, int]:
        return counts.setdefault(session_id, dict.fromkeys(COUNTERS, 0))

    for session_id, total, valid in db.session.execute(
        select(Capture.session_id, func.count(),
               func.coalesce(func.sum(case((Capture.valid.is_(True), 1), else_=0)), 0))
        .group_by(Capture.session_id)
    ):
        slot(session_id).update(captures_count=total, valid_count=int(valid),
                                invalid_count=total - int(valid))
    # files_count counts files received, not duplicates of files the session already had.
    for session_id, total in db.session.execute(
        select(Upload.session_id, func.count()).where(Upload.duplicate_of_id.is_(None))
        .group_by(Upload.session_id)
    ):
        slot(session_id)["files_count"] = total
    for session_id, total in db.session.execute(
        select(Scan.session_id, func.count()).group_by(Scan.session_id)
    ):
        slot(session_id)["scans_count"] = total
    return counts


def recount_session(session_id: int) -> None:
    """Set a session's counters from its rows in one statement: whatever is committed
    meanwhile is counted exactly once (a read-then-add repair would count it twice)."""
    def count(model, *where):
        return (select(func.count()).select_from(model)
                .where(model.session_id == session_id, *where).scalar_subquery())

    db.session.execute(update(ScanSession).where(ScanSession.id == session_id).values(
        captures_count=count(Capture),
        valid_count=count(Capture, Capture.valid.is_(True)),
        invalid_count=count(Capture, Capture.valid.is_(False)),
        files_count=count(Upload, Upload.duplicate_of_id.is_(None)),
        scans_count=count(Scan),
    ))


def check_counters(report: Report, sessions: dict[int, ScanSession]) -> None:
    counted = counted_from_rows()
    busy = _active_session_ids()
    fixed_any = False
    for session in sessions.values():
        should = counted.get(session.id, dict.fromkeys(COUNTERS, 0))
        deltas = {name: should[name] - getattr(session, name) for name in COUNTERS
                  if should[name] != getattr(session, name)}
        if not deltas:
            continue
        wrong = ", ".join(f"{name.removesuffix('_count')} {getattr(session, name)} "
                          f"(should be {should[name]})" for name in deltas)
        message = f"{_describe(session)} shows wrong totals: {wrong}."
        if not report.repair:
            report.add("problem", message + " --repair recounts them.")
        elif session.id in busy:
            report.add("problem", message + " Not recounted now because a scan or upload of "
                                            "this session is still in progress; run the doctor "
                                            "again when it is done.")
        else:
            recount_session(session.id)
            fixed_any = True
            report.add("problem", message + " They were recounted.", repaired=True)
    if fixed_any:
        db.session.commit()


# --- scans -----------------------------------------------------------------------------

def _age(scan: Scan, now: datetime) -> float:
    last = scan.heartbeat_at or scan.started_at or scan.created_at
    return (now - last).total_seconds()


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{int(seconds)} seconds"
    if seconds < 7200:
        return f"{int(seconds // 60)} minutes"
    return f"{seconds / 3600:.1f} hours"


def check_stale_scans(report: Report) -> None:
    from scanner_app.scans.service import (
        QUEUED_GRACE_SECONDS,
        STALE_SECONDS,
        next_frame,
        reconcile_stale_scans,
    )

    if report.repair:
        for scan_id in reconcile_stale_scans():
            scan = db.session.get(Scan, scan_id)
            frame = next_frame(scan.frames_captured, scan.frames_planned)
            report.add("problem", f"Scan {scan_id} was still marked as queued, running or paused, "
                                  "but its worker was gone. It was marked interrupted; resume it "
                                  f"to continue from frame {frame} (its frames are "
                                  "kept).", repaired=True)
    now = utcnow()
    for scan in db.session.scalars(select(Scan).where(Scan.status.in_(SCAN_ACTIVE))):
        age = _age(scan, now)
        if scan.status.is_under_way and age >= STALE_SECONDS:
            hint = (" It showed a sign of life while the doctor looked; run the doctor again."
                    if report.repair else " --repair marks it interrupted so it can be resumed.")
            report.add("problem", f"Scan {scan.id} says it is {scan.status}, but its worker has "
                                  f"shown no sign of life for {_duration(age)}.{hint}")
        elif scan.status is ScanStatus.QUEUED and age >= QUEUED_GRACE_SECONDS:
            report.add("warning", f"Scan {scan.id} has been waiting in the queue for "
                                  f"{_duration(age)}. Is a worker running ('scanner worker', "
                                  "or 'scanner run')?")


# --- all of it ---------------------------------------------------------------------------

def run_doctor(repair: bool = False) -> Report:
    """All checks, in an order where an earlier repair helps the later checks."""
    settings = _settings()
    store = StorageManager(settings.data_dir)
    report = Report(repair=repair)
    sessions = {s.id: s for s in db.session.scalars(select(ScanSession).order_by(ScanSession.id))}

    for what, check, args in (  # guarded: never a traceback for what is found on disk
        ("looking for leftovers of deleted sessions", check_leftovers, (store, sessions)),
        ("comparing session folders with the database", check_session_dirs, (store, sessions)),
        ("checking that every image is on disk", check_capture_files, (store, sessions)),
        ("checking the totals", check_counters, (sessions,)),
        ("looking for stale scans", check_stale_scans, ()),
        ("looking for stuck uploads", check_stuck_uploads, (settings,)),
        ("checking the automatic sessions of past days", check_past_auto_sessions, ()),
        ("checking free space", check_free_space, (settings,)),
    ):
        guarded(report, what, check, *args)
    if not any(f.severity != "ok" for f in report.findings):
        report.findings.insert(0, Finding(
            "ok", f"{len(sessions)} session{'s' if len(sessions) != 1 else ''}: database and "
                  "folders agree, every image is on disk, all totals are right, no stale scans."))
    return report
