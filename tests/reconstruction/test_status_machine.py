"""The reconstruction status machine, walked whole on a real row: transition() changes the row
exactly when models/statuses.py's table allows it, and the database allows one queued or
running reconstruction per scan."""

from __future__ import annotations

import itertools
from datetime import date

import pytest
from sqlalchemy.exc import IntegrityError

from scanner_app.models import (
    Reconstruction,
    ReconstructionStatus,
    Scan,
    ScanSession,
    ScanStatus,
    transition,
)
from scanner_app.models.statuses import RECONSTRUCTION_TRANSITIONS
from scanner_app.platform.extensions import db


def _scan() -> Scan:
    session = ScanSession(kind="manual", day=date(2026, 11, 30), name="walk")
    db.session.add(session)
    db.session.flush()
    scan = Scan(session_id=session.id, status=ScanStatus.COMPLETED, profile="quick",
                frames_planned=1)
    db.session.add(scan)
    db.session.commit()
    return scan


def test_every_pair_changes_a_row_exactly_when_the_table_allows(sqlite_app) -> None:
    with sqlite_app.app_context():
        scan = _scan()
        changed = set()
        for source, target in itertools.product(ReconstructionStatus, ReconstructionStatus):
            row = Reconstruction(scan_id=scan.id, session_id=scan.session_id, status=source)
            db.session.add(row)
            db.session.commit()
            if any(target in targets for targets in RECONSTRUCTION_TRANSITIONS.values()):
                if transition(Reconstruction, row.id, target, error="walked"):
                    changed.add((source, target))
            db.session.commit()
            db.session.refresh(row)
            assert row.status is (target if (source, target) in changed else source)
            db.session.delete(row)
            db.session.commit()
        allowed = {(s, t) for s, ts in RECONSTRUCTION_TRANSITIONS.items() for t in ts}
        assert changed == allowed


def test_one_queued_or_running_reconstruction_per_scan(sqlite_app) -> None:
    with sqlite_app.app_context():
        scan = _scan()
        for status in (ReconstructionStatus.COMPLETED, ReconstructionStatus.FAILED,
                       ReconstructionStatus.QUEUED):
            db.session.add(Reconstruction(scan_id=scan.id, session_id=scan.session_id,
                                          status=status))
            db.session.commit()
        db.session.add(Reconstruction(scan_id=scan.id, session_id=scan.session_id,
                                      status=ReconstructionStatus.RUNNING))
        with pytest.raises(IntegrityError):
            db.session.commit()
