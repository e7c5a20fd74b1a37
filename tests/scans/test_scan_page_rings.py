"""The scan page with rings: a guided scan's message and its ring, and the data-set download
of a finished scan."""

from __future__ import annotations

from scanner_app.models import Scan, ScanStatus
from scanner_app.platform.extensions import db
from scanner_app.scans.path import ScanPath
from scanner_app.sessions.resolver import resolve_session


def add_scan(app, **values) -> int:
    with app.app_context():
        path = ScanPath.build([(10.0, 4), (35.0, 3)])
        scan = Scan(session_id=resolve_session(None), profile="quick", source="web",
                    frames_planned=path.total_frames, path=path.to_json(), **values)
        db.session.add(scan)
        db.session.commit()
        return scan.id


def test_a_waiting_scan_shows_what_to_do_and_its_ring(sqlite_app, sqlite_client) -> None:
    scan_id = add_scan(sqlite_app, status=ScanStatus.PAUSED, control="pause",
                       frames_captured=4,
                       message="Set the camera to 35° and press the button or Resume.")
    page = sqlite_client.get(f"/scans/{scan_id}").get_data(as_text=True)
    assert "Waiting for you" in page
    assert "Set the camera to 35° and press the button or Resume." in page
    assert "2 / 2 · 35°" in page  # ring 2 of 2, at 35 degrees
    assert "Resume" in page and "Download data set" not in page  # still under way


def test_a_finished_scan_offers_its_data_set(sqlite_app, sqlite_client) -> None:
    scan_id = add_scan(sqlite_app, status=ScanStatus.COMPLETED, frames_captured=7)
    page = sqlite_client.get(f"/scans/{scan_id}").get_data(as_text=True)
    assert f'href="/api/v1/scans/{scan_id}/dataset.zip"' in page
    assert "Waiting for you" not in page
