"""The scan page shows a completed model in the vendored <model-viewer>, in Debian's chromium,
under the station's self-only CSP: the module loads from the station, the GLB loads, and the
browser refuses nothing and reports no page error."""

from __future__ import annotations

import json

import pytest

from hal.mock.scene import write_object_glb
from scanner_app.models import Reconstruction, ReconstructionStatus, Scan, ScanStatus
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import StorageManager
from tests.conftest import build_app
from tests.support import dispose
from tests.web.conftest import chromium  # noqa: F401 - the module-scoped browser fixture
from tests.web.live_station import live_station, open_page

REDIS_DB = 11  # this station's jobs are for this station's worker alone
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def station(tmp_path_factory, redis_server):
    yield from live_station(tmp_path_factory, redis_server, REDIS_DB, "viewer")


def _completed_model(station) -> int:
    """A completed scan with a completed reconstruction whose model is the mock's true mesh."""
    key = station.create_api_key("viewer")
    app = build_app(station.data_dir, None, SCANNER_REDIS_URL=station.env["SCANNER_REDIS_URL"])
    try:
        client = app.test_client()
        made = client.post("/api/v1/sessions", json={"name": "Viewer"},
                           headers={"X-Api-Key": key}).get_json()
        session_id = (made.get("session") or made)["id"]
        with app.app_context():
            scan = Scan(session_id=session_id, status=ScanStatus.COMPLETED, profile="quick",
                        frames_planned=24, frames_captured=24)
            db.session.add(scan)
            db.session.flush()
            row = Reconstruction(scan_id=scan.id, session_id=session_id,
                                 status=ReconstructionStatus.COMPLETED, stage="done",
                                 percent=100.0, outputs=json.dumps(["model.glb"]),
                                 metrics=json.dumps({"refined": False}))
            db.session.add(row)
            db.session.commit()
            folder = StorageManager(station.data_dir).reconstruction_dir(session_id, scan.id)
            folder.mkdir()
            write_object_glb(folder / "model.glb")
            return scan.id
    finally:
        dispose(app)


def test_the_scan_page_shows_the_model_under_the_csp(chromium, station) -> None:  # noqa: F811
    station.run_cli("user", "create", "admin", "--admin", "--password-stdin",
                    input=PASSWORD + "\n")
    scan_id = _completed_model(station)
    context, page, requests, failures = open_page(chromium)
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text)
            if "Content Security Policy" in m.text else None)
    try:
        page.goto(station.url + "/login")
        page.fill("input[name=name]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(station.url + "/")
        page.goto(f"{station.url}/scans/{scan_id}")
        page.wait_for_selector("model-viewer")
        page.wait_for_function("() => customElements.get('model-viewer') !== undefined")
        page.wait_for_function("() => document.querySelector('model-viewer').loaded === true")
        assert page.locator("a[download]", has_text="model.glb").count() == 1
        box = page.locator("model-viewer").bounding_box()
        assert box and box["width"] >= 300 and box["height"] >= 150  # its own layout applied
        page.screenshot(path=str(station.data_dir.parent / "viewer.png"))
    finally:
        context.close()
    assert refused == []
    # model-viewer's bundled meshopt decoder compiles WebAssembly as it loads, which a
    # script-src of 'self' refuses ('wasm-unsafe-eval' would allow it); the station's GLBs
    # are not meshopt-compressed, so that is the only error there may be.
    assert all("WebAssembly" in failure for failure in failures), failures
    assert all(url.startswith(station.url) for url in requests), requests
    assert any(url.endswith("/vendor/model-viewer/model-viewer.min.js") for url in requests)
