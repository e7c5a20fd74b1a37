"""The UI in a real browser (Debian's chromium through Playwright) against a live station:
`scanner web` and a real `scanner worker` on a temp data dir, SQLite and a private Redis.

First run creates the admin, a named session is created (and a duplicate name refused next
to the form), a quick scan runs while its progress partial polls and then stops polling once
completed, the session page shows the scan's thumbnails, and an uploaded JPEG is counted.
Screenshots land in /tmp/screens/ for a person to look at.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image

from tests.web.live_station import SCREENS, live_station, open_page

pytestmark = pytest.mark.browser

BROWSER_TEST_REDIS_DB = 6  # not db 0: this station's jobs are for this station's worker only
@pytest.fixture(scope="module")
def station(tmp_path_factory, redis_server):
    yield from live_station(tmp_path_factory, redis_server, BROWSER_TEST_REDIS_DB, "browser")


def _jpeg(path: Path) -> Path:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (30, 140, 120)).save(buffer, "JPEG", quality=85)
    path.write_bytes(buffer.getvalue())
    return path


def _shot(page, name: str) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=True)


def test_station_in_a_real_browser(chromium, station, tmp_path):
    from playwright.sync_api import expect

    context, page, requests, failures = open_page(chromium)
    try:
        # --- first run: the first visitor creates the admin ---------------------------
        page.goto(station.url + "/")
        expect(page).to_have_url(re.compile(r"/setup$"))
        expect(page.locator(".banner-mock")).to_contain_text("Mock hardware")
        page.fill("input[name=name]", "admin")
        page.fill("input[name=password]", "correct horse battery")
        page.click("button[type=submit]")
        expect(page).to_have_url(station.url + "/")
        expect(page.locator("#scan-progress")).to_have_attribute("data-status", "idle")

        # --- a named session, and a duplicate name refused next to the form -----------
        page.click("nav >> text=Sessions")
        page.fill("input[name=name]", "Trial 42")
        page.click("text=Create session")
        expect(page.locator("#session-list")).to_contain_text("Trial 42")
        expect(page.locator("input[name=name]")).to_have_value("")  # form reset
        page.fill("input[name=name]", "Trial 42")
        page.click("text=Create session")
        expect(page.locator(".create-session .error-slot")).to_contain_text(
            "A session named 'Trial 42' already exists")

        # --- a quick scan: live progress, then polling stops -------------------------
        page.click("nav >> text=Dashboard")
        expect(page.locator("#current-session")).to_contain_text("Trial 42")
        page.select_option("select[name=profile]", "quick")
        page.fill("input[name=frames]", "4")
        page.click("text=Start scan")
        progress = page.locator("#scan-progress")
        expect(progress).to_have_attribute("data-scan-id", re.compile(r"\d+"))
        scan_id = progress.get_attribute("data-scan-id")
        progress_url = f"{station.url}/scans/{scan_id}/progress"
        expect(progress).to_have_attribute("data-status", "completed", timeout=45_000)
        expect(progress).to_contain_text("4 / 4")
        expect(page.locator(".start-scan")).to_be_visible()  # back once the scan is done
        # The current session's panel refreshed itself once the scan ended.
        current = page.locator("#current-session .stats")
        expect(current.locator("div", has_text="Captures").locator("dd")).to_have_text("4")
        expect(current.locator("div", has_text="Scans").locator("dd")).to_have_text("1")
        polls = sum(1 for url in requests if url == progress_url)
        assert polls >= 1, f"the progress partial never polled {progress_url}"
        page.wait_for_timeout(2500)  # 2.5 polling periods: a live trigger would have fired
        later = sum(1 for url in requests if url == progress_url)
        assert later == polls, f"{later - polls} requests to {progress_url} after completion"
        _shot(page, "dashboard")

        # --- the session page shows the frames' thumbnails -------------------------------
        page.click("#scan-progress >> text=Open session")
        expect(page.locator("h1.summary-title")).to_have_text("Trial 42")
        thumbs = page.locator(".thumbs img")
        expect(thumbs).to_have_count(4)
        page.wait_for_function(
            "() => [...document.querySelectorAll('.thumbs img')]"
            ".every(img => img.complete && img.naturalWidth > 0)")
        thumb_src = thumbs.first.get_attribute("src")
        assert re.match(r"^/sessions/\d+/thumbnails/\d+\.jpg\?src=images/scans/", thumb_src)
        expect(page.locator("#session-summary .stats")).to_contain_text("4")
        download = page.locator("text=Download ZIP").get_attribute("href")
        archive = page.request.get(station.url + download)  # with the login cookie
        assert archive.status == 200 and archive.body()[:2] == b"PK"

        # --- an upload through the form, with progress, counted in the session -----------
        page.click("text=Upload files")
        page.evaluate("""() => { window.__progressEvents = 0;
            document.body.addEventListener('htmx:xhr:progress',
                () => window.__progressEvents++); }""")
        page.set_input_files("input[name=files]", str(_jpeg(tmp_path / "bench photo.jpg")))
        expect(page.locator("[data-chosen]")).to_have_text("bench photo.jpg")
        page.click("form#upload-form button[type=submit]")
        done = page.locator('#upload-results .upload[data-status="done"]')
        expect(done).to_contain_text("bench photo.jpg", timeout=30_000)
        expect(done).to_contain_text("1 image")
        expect(page.locator("#upload-results .upload-list")).to_have_attribute(
            "data-processing", "0")
        assert page.evaluate("window.__progressEvents") > 0, "no upload progress events"

        page.click("#upload-results >> text=Trial 42")
        stats = page.locator("#session-summary .stats")
        expect(stats.locator("div", has_text="Captures").locator("dd")).to_have_text("5")
        expect(stats.locator("div", has_text="Files").locator("dd")).to_have_text("1")
        expect(page.locator(".thumbs img")).to_have_count(5)
        page.wait_for_function(
            "() => [...document.querySelectorAll('.thumbs img')]"
            ".every(img => img.complete && img.naturalWidth > 0)")
        _shot(page, "session")

        # --- the same pages on a phone -----------------------------------------------------
        phone = chromium.new_context(viewport={"width": 390, "height": 844},
                                     storage_state=context.storage_state())
        small = phone.new_page()
        session_path = page.url.removeprefix(station.url)
        for path, name in (("/", "phone-dashboard"), ("/sessions", "phone-sessions"),
                           (session_path, "phone-session"), ("/upload", "phone-upload")):
            small.goto(station.url + path)
            overflow = small.evaluate(
                "() => document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} scrolls sideways on a phone by {overflow}px"
            _shot(small, name)
        phone.close()
        assert not failures, f"JavaScript errors on the page: {failures}"
    except Exception:
        _shot(page, "failure")
        print("--- web log ---\n" + station.log_text("web"))
        print("--- worker log ---\n" + station.log_text("worker"))
        raise
    finally:
        context.close()
