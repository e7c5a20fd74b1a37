"""`scanner doctor [--repair]` on a healthy and on a damaged data dir."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from scanner_app.models import Capture, Scan, ScanSession, Upload
from scanner_app.platform.clock import utcnow
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import StorageManager
from scanner_app.sessions.counters import bump_session_counters
from scanner_app.sessions.resolver import resolve_session
from scanner_app.sessions.service import create_manual_session
from scanner_app.station import doctor as doctor_service
from tests.support import jpeg_bytes, run_cli, session_row


def _add_scan(session_id: int, status: str = "completed", frames: int = 2,
              captured: int | None = None, **extra) -> Scan:
    scan = Scan(session_id=session_id, status=status, profile="quick", frames_planned=frames,
                frames_captured=frames if captured is None else captured, source="api", **extra)
    db.session.add(scan)
    db.session.flush()
    bump_session_counters(session_id, scans_count=1)
    db.session.commit()
    return scan


def _add_frame(store: StorageManager, session_id: int, scan_id: int, index: int,
               on_disk: bool = True, valid: bool = True) -> Capture:
    rel = f"images/scans/{scan_id}/frame-{index:03d}.jpg"
    if on_disk:
        path = store.session_dir(session_id) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg_bytes(seed=index))
    capture = Capture(session_id=session_id, scan_id=scan_id, frame_index=index, path=rel,
                      valid=valid, angle_deg=index * 90.0)
    db.session.add(capture)
    bump_session_counters(session_id, captures_count=1,
                          valid_count=int(valid), invalid_count=int(not valid))
    db.session.commit()
    return capture


def _healthy_session(store: StorageManager) -> int:
    session_id = resolve_session(None)
    scan = _add_scan(session_id)
    for index in range(2):
        _add_frame(store, session_id, scan.id, index)
    return session_id


def _damage(app, data_dir: Path) -> dict:
    """A data dir with one of each problem the doctor knows."""
    store = StorageManager(data_dir)
    with app.app_context():
        healthy = _healthy_session(store)
        # A stale scan: 'running', its worker silent for ten minutes.
        stale = _add_scan(healthy, status="running", frames=4, captured=1, rq_job_id="scan-lost",
                          started_at=utcnow() - timedelta(minutes=11),
                          heartbeat_at=utcnow() - timedelta(minutes=10))
        # An image recorded in the database but gone from disk.
        lost = _add_frame(store, healthy, stale.id, 0, on_disk=False)
        # A session whose folder disappeared.
        no_dir = create_manual_session("Folder gone", make_current=False).id
        shutil.rmtree(store.session_dir(no_dir))
        # A session whose totals are wrong.
        wrong = create_manual_session("Wrong totals", make_current=False).id
        scan = _add_scan(wrong)
        _add_frame(store, wrong, scan.id, 0, valid=False)
        db.session.add(Upload(session_id=wrong, filename="a.zip", size=3, status="done"))
        db.session.execute(update(ScanSession).where(ScanSession.id == wrong).values(
            captures_count=7, valid_count=7, invalid_count=0, files_count=0, scans_count=3))
        db.session.commit()
        ids = {"healthy": healthy, "stale": stale.id, "lost": lost.path, "no_dir": no_dir,
               "wrong": wrong}
    # A folder with images that belongs to no session.
    orphan = data_dir / "sessions" / "999" / "images"
    orphan.mkdir(parents=True)
    (orphan / "only-copy.jpg").write_bytes(jpeg_bytes())
    return ids


def test_a_healthy_station_is_in_order(sqlite_app, data_dir):
    with sqlite_app.app_context():
        _healthy_session(StorageManager(data_dir))
    done = run_cli(data_dir, "doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "database and folders agree" in done.stdout
    assert "free in" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "Everything is in order."


def test_doctor_reports_each_problem_in_words_and_changes_nothing(sqlite_app, data_dir,
                                                                  private_redis):
    damage = _damage(sqlite_app, data_dir)
    done = run_cli(data_dir, "doctor")
    assert done.returncode == 1
    out = done.stdout
    assert f"Session {damage['no_dir']} ('Folder gone') has no folder on disk" in out
    assert "sessions/999 (1 file," in out and "belongs to no session" in out
    assert f"1 of 3 images recorded in the database are missing on disk ({damage['lost']})" in out
    assert ("shows wrong totals: files 0 (should be 1), captures 7 (should be 1), valid 7 "
            "(should be 0), invalid 0 (should be 1), scans 3 (should be 1)") in out
    assert "Run 'scanner doctor --repair'" in out.strip().splitlines()[-1]
    assert "Traceback" not in done.stdout + done.stderr
    # Nothing was changed.
    assert not (data_dir / "sessions" / str(damage["no_dir"])).exists()
    assert session_row(sqlite_app, damage["wrong"]).captures_count == 7


def test_doctor_repair_fixes_what_is_safe_and_never_deletes_images(sqlite_app, data_dir,
                                                                  private_redis):
    damage = _damage(sqlite_app, data_dir)
    done = run_cli(data_dir, "doctor", "--repair")
    out = done.stdout
    # Problems that need a person remain: the orphan folder and the lost image.
    assert done.returncode == 1, out + done.stderr
    assert out.strip().splitlines()[-1] == "2 problems need attention."

    root = data_dir / "sessions" / str(damage["no_dir"])
    assert (root / "metadata" / "session.json").is_file()
    assert "An empty folder was created for it." in out
    wrong = session_row(sqlite_app, damage["wrong"])
    assert (wrong.files_count, wrong.captures_count, wrong.valid_count, wrong.invalid_count,
            wrong.scans_count) == (1, 1, 0, 1, 1)
    assert "They were recounted." in out
    with sqlite_app.app_context():
        # (Every station process's startup already reconciles stale scans; either way the
        # stale scan ends interrupted and resumable.)
        assert db.session.get(Scan, damage["stale"]).status == "interrupted"
        # The record of the lost image is kept.
        assert db.session.scalar(select(Capture).where(Capture.path == damage["lost"]))
    assert (data_dir / "sessions" / "999" / "images" / "only-copy.jpg").is_file()

    # Once the person dealt with the rest, the doctor is content.
    shutil.move(data_dir / "sessions" / "999", data_dir / "rescued-999")
    with sqlite_app.app_context():
        db.session.execute(update(Capture).where(Capture.path == damage["lost"])
                           .values(path="images/scans/1/frame-000.jpg"))
        db.session.commit()
    again = run_cli(data_dir, "doctor")
    assert again.returncode == 0, again.stdout
    assert again.stdout.strip().splitlines()[-1] == "Everything is in order."


def test_stale_scans_are_reported_and_marked_interrupted_only_with_repair(
        sqlite_app, data_dir, private_redis):
    # The app was built before the scan went stale, so nothing reconciled it yet.
    damage = _damage(sqlite_app, data_dir)
    with sqlite_app.app_context():
        report = doctor_service.run_doctor(repair=False)
        messages = [f.message for f in report.open_problems]
        assert any(f"Scan {damage['stale']} says it is running, but its worker has shown no "
                   "sign of life for 10 minutes. --repair marks it interrupted" in m
                   for m in messages), messages
        db.session.expire_all()
        assert db.session.get(Scan, damage["stale"]).status == "running"

        report = doctor_service.run_doctor(repair=True)
        fixed = [f.message for f in report.findings if f.repaired]
        assert any(f"Scan {damage['stale']} was still marked as queued, running or paused, but "
                   "its worker was gone. It was marked interrupted; resume it to continue from "
                   "frame 2" in m for m in fixed), fixed
        db.session.expire_all()
        assert db.session.get(Scan, damage["stale"]).status == "interrupted"


def test_a_scan_waiting_long_in_the_queue_is_a_note(sqlite_app, data_dir):
    with sqlite_app.app_context():
        session_id = _healthy_session(StorageManager(data_dir))
        _add_scan(session_id, status="queued", heartbeat_at=utcnow() - timedelta(minutes=5))
        report = doctor_service.run_doctor(repair=False)
    assert report.ok
    assert any("waiting in the queue for 5 minutes" in f.message and f.severity == "warning"
               for f in report.findings)


def test_leftovers_of_deletes_are_removed_or_put_back(sqlite_app, data_dir, monkeypatch):
    store = StorageManager(data_dir)
    with sqlite_app.app_context():
        kept = create_manual_session("Half deleted", make_current=False).id
    sessions_root = data_dir / "sessions"
    # A delete renamed the folder aside, then its database commit never happened.
    home = store.session_dir(kept)
    (home / "images" / "photo.jpg").write_bytes(jpeg_bytes())
    home.rename(sessions_root / f".deleting-{kept}")
    # Deletes that committed but crashed before the folder was gone.
    (sessions_root / ".deleted-77-abcd1234" / "images").mkdir(parents=True)
    (sessions_root / ".deleted-77-abcd1234" / "images" / "x.jpg").write_bytes(b"x")
    (sessions_root / ".deleting-78").mkdir()

    with sqlite_app.app_context():
        young = doctor_service.run_doctor(repair=True)
    # Renamed moments ago: it may be a delete in progress, so it is left alone.
    assert all(f.severity == "warning" and not f.repaired
               for f in young.findings if "being deleted right now" in f.message)
    assert (sessions_root / ".deleted-77-abcd1234").exists()
    assert not home.exists()  # no empty folder made in its place while it may be moving

    monkeypatch.setattr(doctor_service, "LEFTOVER_MIN_AGE_SECONDS", 0.0)
    with sqlite_app.app_context():
        report = doctor_service.run_doctor(repair=False)
        assert not report.ok
        assert (sessions_root / ".deleted-77-abcd1234").exists()
        report = doctor_service.run_doctor(repair=True)
    assert report.ok, [f.message for f in report.open_problems]
    assert not (sessions_root / ".deleted-77-abcd1234").exists()
    assert not (sessions_root / ".deleting-78").exists()
    assert (home / "images" / "photo.jpg").is_file()  # put back, with its image
    messages = " ".join(f.message for f in report.findings)
    assert "The folder was put back." in messages
    assert "left of deleted session 77" in messages


def test_counters_are_recounted_on_both_databases(app, data_dir):
    store = StorageManager(data_dir)
    with app.app_context():
        session_id = _healthy_session(store)
        _add_frame(store, session_id, db.session.scalar(select(Scan.id)), 5, valid=False)
        originals = [Upload(session_id=session_id, filename=f"{i}.jpg", size=1,
                            status="done") for i in range(3)]
        db.session.add_all(originals)
        db.session.flush()
        # A file sent again is recorded, but is not a new file of the session.
        db.session.add(Upload(session_id=session_id, filename="0 again.jpg", size=1,
                              status="done", duplicate_of_id=originals[0].id))
        db.session.execute(update(ScanSession).values(
            files_count=0, captures_count=0, valid_count=0, invalid_count=0, scans_count=0))
        db.session.commit()
        assert not doctor_service.run_doctor(repair=False).ok
        assert doctor_service.run_doctor(repair=True).ok
        db.session.expire_all()
        session = db.session.get(ScanSession, session_id)
        assert (session.files_count, session.captures_count, session.valid_count,
                session.invalid_count, session.scans_count) == (3, 3, 2, 1, 1)
        assert doctor_service.run_doctor(repair=False).ok


def test_counters_of_a_session_with_a_scan_in_progress_are_left_alone(sqlite_app, data_dir):
    with sqlite_app.app_context():
        session_id = _healthy_session(StorageManager(data_dir))
        _add_scan(session_id, status="running", heartbeat_at=utcnow(), started_at=utcnow())
        db.session.execute(update(ScanSession).values(captures_count=99))
        db.session.commit()
        report = doctor_service.run_doctor(repair=True)
        assert not report.ok
        assert "still in progress" in report.open_problems[0].message
        assert db.session.get(ScanSession, session_id).captures_count == 99


@pytest.mark.parametrize("free_mb,severity", [(100, "problem"), (510, "warning")])
def test_low_free_space_is_reported(sqlite_app, monkeypatch, free_mb, severity):
    from scanner_app.platform import disk
    monkeypatch.setattr(disk, "free_bytes", lambda _path: free_mb * 1024 * 1024)
    with sqlite_app.app_context():
        report = doctor_service.run_doctor()
    [finding] = [f for f in report.findings if "free in" in f.message]
    assert finding.severity == severity
    assert report.ok is (severity != "problem")
