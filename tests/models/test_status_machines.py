"""The status machines, walked whole on SQLite and PostgreSQL: for every pair of statuses of
scans, uploads and sessions, `transition()` changes a real row exactly when the table in
models/statuses.py allows it, and otherwise changes nothing at all (nor the other values it
was asked to write)."""

from __future__ import annotations

import itertools
from datetime import date

import pytest
import sqlalchemy as sa

from scanner_app.models import (
    Reconstruction,
    ReconstructionStatus,
    Scan,
    ScanSession,
    ScanStatus,
    SessionStatus,
    Upload,
    UploadStatus,
    transition,
    update_while,
)
from scanner_app.models.statuses import (
    RECONSTRUCTION_TRANSITIONS,
    SCAN_TRANSITIONS,
    SESSION_TRANSITIONS,
    UPLOAD_TRANSITIONS,
    sources_of,
)
from scanner_app.platform.extensions import db


def _session(name: str, status: SessionStatus = SessionStatus.ACTIVE) -> int:
    session = ScanSession(kind="manual", day=date(2026, 11, 30), name=name, status=status)
    db.session.add(session)
    db.session.commit()
    return session.id


def _row(model: type, row_id: int) -> dict:
    """The stored row, read past the ORM's identity map."""
    db.session.expire_all()
    return dict(db.session.execute(
        sa.select(model.__table__).where(model.__table__.c.id == row_id)).mappings().one())


def _walk(model: type, enum: type, table: dict, make_row) -> list[tuple]:
    """Try every (from, to) pair on a fresh row; returns the pairs that changed the row."""
    changed = []
    for number, (source, target) in enumerate(itertools.product(enum, enum)):
        row_id = make_row(source, number)
        before = _row(model, row_id)
        values = {"name": f"x{number}"} if model is ScanSession else {"error": "by transition"}
        if sources_of(target):
            done = transition(model, row_id, target, **values)
        else:  # only ever a new row's status (an upload's processing): asking is a bug
            with pytest.raises(ValueError, match="no allowed transition"):
                transition(model, row_id, target, **values)
            done = False
        db.session.commit()
        after = _row(model, row_id)
        if done:
            changed.append((source, target))
            assert after["status"] == target.value
        else:
            assert after == before, f"{source} -> {target} was refused but changed the row"
        db.session.execute(sa.delete(model).where(model.id == row_id))
        db.session.commit()
    allowed = [(s, t) for s in enum for t in table[s]]
    assert sorted(changed) == sorted(allowed)
    return changed


def test_every_scan_transition_in_the_table_works_and_no_other(app):
    with app.app_context():
        session_id = _session("walk")

        def make_scan(status: ScanStatus, _number: int) -> int:
            scan = Scan(session_id=session_id, status=status, profile="quick",
                        frames_planned=3, source="api")
            db.session.add(scan)
            db.session.commit()
            return scan.id

        changed = _walk(Scan, ScanStatus, SCAN_TRANSITIONS, make_scan)
        # The transitions the station lives by are among them, and none leaves a final one.
        for pair in [(ScanStatus.QUEUED, ScanStatus.RUNNING),
                     (ScanStatus.RUNNING, ScanStatus.PAUSED),
                     (ScanStatus.PAUSED, ScanStatus.RUNNING),
                     (ScanStatus.INTERRUPTED, ScanStatus.QUEUED),
                     (ScanStatus.RUNNING, ScanStatus.COMPLETED)]:
            assert pair in changed
        assert not any(source.is_finished for source, _ in changed)


def test_every_upload_transition_in_the_table_works_and_no_other(app):
    with app.app_context():
        session_id = _session("uploads")

        def make_upload(status: UploadStatus, number: int) -> int:
            upload = Upload(session_id=session_id, filename=f"{number}.jpg", size=1,
                            status=status)
            db.session.add(upload)
            db.session.commit()
            return upload.id

        changed = _walk(Upload, UploadStatus, UPLOAD_TRANSITIONS, make_upload)
        assert sorted(changed) == sorted([(UploadStatus.PROCESSING, UploadStatus.DONE),
                                          (UploadStatus.PROCESSING, UploadStatus.FAILED)])


def test_every_session_transition_in_the_table_works_and_no_other(app):
    with app.app_context():
        changed = _walk(ScanSession, SessionStatus, SESSION_TRANSITIONS,
                        lambda status, number: _session(f"walk {number}", status))
        assert len(changed) == 2


def test_every_reconstruction_transition_in_the_table_works_and_no_other(app):
    with app.app_context():
        session_id = _session("models")
        scan = Scan(session_id=session_id, status=ScanStatus.COMPLETED, profile="quick",
                    frames_planned=3, source="api")
        db.session.add(scan)
        db.session.commit()

        def make_reconstruction(status: ReconstructionStatus, _number: int) -> int:
            row = Reconstruction(scan_id=scan.id, session_id=session_id, status=status)
            db.session.add(row)
            db.session.commit()
            return row.id

        changed = _walk(Reconstruction, ReconstructionStatus, RECONSTRUCTION_TRANSITIONS,
                        make_reconstruction)
        assert (ReconstructionStatus.QUEUED, ReconstructionStatus.RUNNING) in changed
        assert not any(source.value in ("completed", "failed", "cancelled", "interrupted")
                       for source, _ in changed)


def test_narrowing_to_a_source_the_table_forbids_is_a_bug_not_a_quiet_false(app):
    with app.app_context():
        session_id = _session("narrow")
        scan = Scan(session_id=session_id, status=ScanStatus.PAUSED, profile="quick",
                    frames_planned=3, source="api")
        db.session.add(scan)
        db.session.commit()
        with pytest.raises(ValueError, match="no allowed transition to 'completed'"):
            transition(Scan, scan.id, ScanStatus.COMPLETED, from_=ScanStatus.PAUSED)
        with pytest.raises(ValueError):
            transition(Scan, scan.id, UploadStatus.DONE)  # another machine's status
        # Narrowed to an allowed source that is not the row's: refused, row unchanged.
        assert not transition(Scan, scan.id, ScanStatus.CANCELLED, from_=ScanStatus.QUEUED)
        # Extra conditions are ANDed: a job that no longer owns the scan cannot end it.
        assert not transition(Scan, scan.id, ScanStatus.CANCELLED,
                              where=[Scan.rq_job_id == "someone-else"])
        db.session.commit()
        assert _row(Scan, scan.id)["status"] == "paused"
        assert transition(Scan, scan.id, ScanStatus.CANCELLED, from_=ScanStatus.PAUSED)
        db.session.commit()
        assert _row(Scan, scan.id)["status"] == "cancelled"


def test_update_while_keeps_the_status_and_only_matches_the_statuses_named(app):
    with app.app_context():
        session_id = _session("guard")
        scan = Scan(session_id=session_id, status=ScanStatus.RUNNING, profile="quick",
                    frames_planned=3, source="api")
        db.session.add(scan)
        db.session.commit()
        assert not update_while(Scan, scan.id, ScanStatus.QUEUED, control="pause")
        assert update_while(Scan, scan.id, (ScanStatus.QUEUED, ScanStatus.RUNNING),
                            control="pause")
        db.session.commit()
        row = _row(Scan, scan.id)
        assert (row["status"], row["control"]) == ("running", "pause")
        with pytest.raises(ValueError, match="never changes a status"):
            update_while(Scan, scan.id, ScanStatus.RUNNING, status=ScanStatus.PAUSED)


def test_loaded_rows_carry_the_enum_and_the_contract_strings_are_unchanged(app):
    with app.app_context():
        session_id = _session("json")
        db.session.execute(sa.text(
            "INSERT INTO scans (session_id, station, status, profile, frames_planned, "
            "frames_captured, source, created_at) "
            "VALUES (:s, 1, 'interrupted', 'quick', 3, 1, 'api', CURRENT_TIMESTAMP)"),
            {"s": session_id})
        db.session.commit()
        scan = db.session.scalar(sa.select(Scan))
        assert scan.status is ScanStatus.INTERRUPTED
        assert scan.status.can_resume and scan.status.can_cancel and not scan.status.can_pause
        assert scan.to_dict()["status"] == "interrupted"
        assert type(scan.to_dict()["status"]) is str
        with pytest.raises(ValueError):
            scan.status = "stopped"  # not a status: refused before it reaches the database


def test_the_questions_pages_ask_agree_with_the_table():
    assert sources_of(ScanStatus.QUEUED) == {ScanStatus.INTERRUPTED}
    for status in ScanStatus:
        assert status.can_cancel == (ScanStatus.CANCELLED in SCAN_TRANSITIONS[status])
        # Pausable: the job will still run it and can reach paused (a queued one as it starts).
        reachable = SCAN_TRANSITIONS[status]
        assert status.can_pause == (ScanStatus.PAUSED in reachable or (
            ScanStatus.RUNNING in reachable and status is not ScanStatus.PAUSED))
        if status.can_resume:  # a resume leads back to the job (running or queued again)
            assert {ScanStatus.RUNNING, ScanStatus.QUEUED} & SCAN_TRANSITIONS[status]
        assert status.is_finished == (not status.is_active and not status.can_resume)
    assert [s.value for s in ScanStatus] == ["queued", "running", "paused", "completed",
                                             "failed", "cancelled", "interrupted"]
    assert [s.value for s in UploadStatus] == ["processing", "done", "failed"]
    assert [s.value for s in SessionStatus] == ["active", "completed"]
