"""The scan page's viewers in Debian's chromium, under the station's self-only CSP: a real
two-ring mock scan (taken by the live station's worker) turns in the 360° spin (static/spin.js:
drag sideways for the next frames, drag up or press ArrowUp for the next ring), and its model
shows in the vendored <model-viewer>, sized by the page's CSS (not its 300×150 default). The
browser refuses nothing and reports no page error: the page's CSP allows compiling
model-viewer's WebAssembly decoder ('wasm-unsafe-eval', that page only), nothing else."""

from __future__ import annotations

import functools
import http.server
import io
import json
import threading
import time
import urllib.error
import urllib.request
import zipfile

import pytest
import redis
from PIL import Image

from hal.mock.scene import write_object_glb
from scanner_app.models import Reconstruction, ReconstructionStatus
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import StorageManager
from tests.conftest import build_app
from tests.support import dispose
from tests.web.conftest import chromium  # noqa: F401 - the module-scoped browser fixture
from tests.web.live_station import SCREENS, LiveStation, open_page

REDIS_DB = 11  # this station's jobs are for this station's worker alone
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def station(tmp_path_factory, redis_server):
    """A live `scanner web` + `scanner worker` whose mock rig has a tilt axis (the rings are
    taken without pausing for a person)."""
    url = redis_server.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    connection = redis.Redis.from_url(url)
    connection.flushdb()
    data_dir = tmp_path_factory.mktemp("viewer") / "data"
    data_dir.mkdir()
    live = LiveStation(data_dir, url, SCANNER_MOCK_CAPTURE_SECONDS="0.02",
                       SCANNER_MOCK_SECONDS_PER_REV="1", SCANNER_TILT="servo")
    try:
        live.start()
        yield live
    finally:
        live.stop()
        connection.flushdb()
        connection.close()


def _api(station, key: str, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        station.url + path, method=method, headers={"X-Api-Key": key,
                                                   "Content-Type": "application/json"},
        data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def scanned_with_model(station) -> dict:
    """A real 2-ring scan (6 frames a ring) of the live worker, then a completed
    reconstruction whose model is the mock's true mesh."""
    key = station.create_api_key("viewer")
    made = _api(station, key, "POST", "/api/v1/sessions", {"name": "Viewer"})
    session_id = (made.get("session") or made)["id"]
    scan = _api(station, key, "POST", "/api/v1/scans",
                {"session_id": session_id, "profile": "quick",
                 "rings": [{"elevation_deg": 10, "frames": 6},
                           {"elevation_deg": 35, "frames": 6}]})["scan"]
    deadline = time.monotonic() + 90
    while scan["status"] not in ("completed", "failed", "interrupted", "cancelled"):
        assert time.monotonic() < deadline, (scan, station.log_text("worker"))
        time.sleep(0.2)
        scan = _api(station, key, "GET", f"/api/v1/scans/{scan['id']}")
        scan = scan.get("scan") or scan
    assert scan["status"] == "completed", (scan, station.log_text("worker"))
    app = build_app(station.data_dir, None, SCANNER_REDIS_URL=station.env["SCANNER_REDIS_URL"])
    try:
        with app.app_context():
            row = Reconstruction(scan_id=scan["id"], session_id=session_id,
                                 status=ReconstructionStatus.COMPLETED, stage="done",
                                 percent=100.0, outputs=json.dumps(["model.glb"]),
                                 metrics=json.dumps({"refined": False}))
            db.session.add(row)
            db.session.commit()
            folder = StorageManager(station.data_dir).reconstruction_dir(session_id, scan["id"])
            folder.mkdir(parents=True, exist_ok=True)
            write_object_glb(folder / "model.glb")
    finally:
        dispose(app)
    return {**scan, "api_key": key}


def _log_in(page, station) -> None:
    page.goto(station.url + "/login")
    page.fill("input[name=name]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(station.url + "/")


@pytest.fixture(scope="module")
def scan(station) -> dict:
    station.run_cli("user", "create", "admin", "--admin", "--password-stdin",
                    input=PASSWORD + "\n")
    return scanned_with_model(station)


def test_the_scan_page_turns_the_spin_and_shows_the_model_under_the_csp(
        chromium, station, scan) -> None:  # noqa: F811
    context, page, requests, failures = open_page(chromium)
    page.set_default_timeout(90_000)  # chromium compiles model-viewer's WebAssembly on 2 busy cores
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text)
            if "Content Security Policy" in m.text else None)
    try:
        _log_in(page, station)
        answer = page.goto(f"{station.url}/scans/{scan['id']}")
        assert "'wasm-unsafe-eval'" in answer.headers["content-security-policy"]
        assert "'unsafe-eval'" not in answer.headers["content-security-policy"]

        spin = page.locator("[data-spin]")
        page.wait_for_selector("[data-spin][data-spin-ready]")
        assert page.locator("ol.spin-row").count() == 2
        assert spin.get_attribute("data-frame") == "0" and spin.get_attribute("data-row") == "0"
        first_src = page.locator("img.spin-view").get_attribute("src")
        page.wait_for_function("() => document.querySelector('img.spin-view').complete && "
                               "document.querySelector('img.spin-view').naturalWidth > 0")
        box = spin.bounding_box()
        assert box and box["width"] > 200
        # Drag a third of the way to the left: the object turns by two of its six frames.
        y = box["y"] + box["height"] / 2
        page.mouse.move(box["x"] + box["width"] * 0.8, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.6, y, steps=5)
        page.mouse.move(box["x"] + box["width"] * 0.47, y, steps=5)
        page.mouse.up()
        assert spin.get_attribute("data-frame") == "2", spin.get_attribute("data-frame")
        assert page.locator("img.spin-view").get_attribute("src") != first_src
        assert "frame 3 of 6" in page.locator(".spin-status").inner_text()
        # The next ring: a key, then a drag back down.
        spin.focus()
        page.keyboard.press("ArrowUp")
        assert spin.get_attribute("data-row") == "1"
        assert "Ring 2 · 35°" in page.locator(".spin-status").inner_text()
        page.keyboard.press("ArrowRight")
        assert spin.get_attribute("data-frame") == "3"
        page.mouse.move(box["x"] + box["width"] / 2, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] / 2, y + 80, steps=4)
        page.mouse.up()
        assert spin.get_attribute("data-row") == "0"

        page.wait_for_selector("model-viewer")
        page.wait_for_function("() => customElements.get('model-viewer') !== undefined")
        page.wait_for_function("() => document.querySelector('model-viewer').loaded === true")
        assert page.locator("a[download]", has_text="model.glb").count() == 1
        viewer = page.locator("model-viewer").bounding_box()
        assert viewer and viewer["width"] > 300 and viewer["height"] > 150, viewer
        SCREENS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENS / "model-desktop.png"))
    finally:
        context.close()
    assert refused == []
    assert failures == []
    assert all(url.startswith(station.url) for url in requests), requests
    assert any(url.endswith("/vendor/model-viewer/model-viewer.min.js") for url in requests)
    assert any(url.endswith("/static/spin.js") for url in requests)
    assert page_link_seen(station, scan)


def page_link_seen(station, scan: dict) -> bool:
    """The spin panel links the web embed."""
    request = urllib.request.Request(f"{station.url}/scans/{scan['id']}/model/spin",
                                     headers={"X-Api-Key": scan["api_key"], "HX-Request": "true"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        html = answer.read().decode()
    return f"/api/v1/scans/{scan['id']}/web-embed.zip" in html and "Web embed (ZIP)" in html


def _drag(page, locator, dx: float, dy: float = 0) -> None:
    box = locator.bounding_box()
    x, y = box["x"] + box["width"] * 0.8, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx / 2, y + dy / 2, steps=4)
    page.mouse.move(x + dx, y + dy, steps=4)
    page.mouse.up()


def test_the_web_embed_zip_turns_and_shows_the_model_from_a_plain_static_server(
        chromium, station, scan, tmp_path) -> None:  # noqa: F811
    key = scan["api_key"]
    made = _api(station, key, "POST", f"/api/v1/scans/{scan['id']}/web-embed", {})["web_embed"]
    assert made["frames"] == 12 and made["rows"] == 2 and made["model"] is True, made
    kept = (station.data_dir / "sessions" / str(scan["session_id"]) / "exports"
            / f"scan-{scan['id']}-model" / "web-embed.zip")
    assert kept.is_file() and kept.stat().st_size == made["bytes"]

    request = urllib.request.Request(station.url + made["url"], headers={"X-Api-Key": key})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.headers["Content-Type"] == "application/zip"
        body = answer.read()
    folder = tmp_path / "embed"
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        names = set(archive.namelist())
        archive.extractall(folder)
    assert {"index.html", "spin.js", "spin.css", "model.glb", "README.txt",
            "model-viewer/model-viewer.min.js", "model-viewer/LICENSE"} <= names
    frames = sorted(n for n in names if n.startswith("frames/"))
    assert len(frames) == 12
    for name in frames:
        with Image.open(folder / name) as image:
            assert max(image.size) <= 1024
    page_html = (folder / "index.html").read_text()
    assert "http://" not in page_html and "https://" not in page_html  # no CDN
    assert "<script>" not in page_html and "style=" not in page_html

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    context, page, requests, failures = open_page(chromium)
    page.set_default_timeout(90_000)  # chromium compiles model-viewer's WebAssembly on 2 busy cores
    try:
        page.goto(base + "/index.html")
        spin = page.locator("[data-spin]")
        page.wait_for_selector("[data-spin][data-spin-ready]")
        assert spin.get_attribute("data-frame") == "0"
        _drag(page, spin, -spin.bounding_box()["width"] * 0.34)
        assert spin.get_attribute("data-frame") == "2", spin.get_attribute("data-frame")
        assert page.locator("img.spin-view").get_attribute("src") == "frames/ring1-003.jpg"
        page.keyboard.press("ArrowUp")
        assert spin.get_attribute("data-row") == "1"
        page.wait_for_function("() => document.querySelector('model-viewer').loaded === true")
        viewer = page.locator("model-viewer").bounding_box()
        assert viewer and viewer["width"] > 300 and viewer["height"] > 150, viewer
    finally:
        context.close()
        server.shutdown()
        server.server_close()
    assert failures == []
    assert requests and all(url.startswith(base) for url in requests), requests
    assert base + "/model.glb" in requests


def test_web_embed_of_a_scan_that_is_not_completed_is_refused(station, scan) -> None:
    key = scan["api_key"]
    made = _api(station, key, "POST", "/api/v1/sessions", {"name": "Cancelled"})
    session_id = (made.get("session") or made)["id"]
    started = _api(station, key, "POST", "/api/v1/scans",
                   {"session_id": session_id, "profile": "quick", "frames": 40})["scan"]
    _api(station, key, "POST", f"/api/v1/scans/{started['id']}/cancel", {})
    for method, path in (("POST", f"/api/v1/scans/{started['id']}/web-embed"),
                         ("GET", f"/api/v1/scans/{started['id']}/web-embed.zip")):
        try:
            _api(station, key, method, path, {} if method == "POST" else None)
        except urllib.error.HTTPError as exc:
            assert exc.code == 409, (method, exc.code)
            message = json.loads(exc.read())["error"]["message"]
            assert "once the scan has completed" in message
        else:
            raise AssertionError(f"{method} {path} answered 2xx for a scan not completed")
