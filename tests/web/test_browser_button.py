"""A dashboard left open notices scans it did not start, in a real browser (Debian's chromium
through Playwright) against a live station: `scanner web`, a real `scanner worker` and the
`scanner button` daemon (mock button) on a temp data dir, SQLite and the test Redis.

The page is opened with no scan running; the start button is pressed (`scanner button
--press`, as the person at the turntable would) and the open page shows that scan's progress
and its completion without a reload; then a script starts a scan through the API and the page,
still showing the finished one, follows the new one too. Screenshots land in /tmp/screens/.
"""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from tests.web.live_station import SCREENS, LiveStation, live_station, open_page

pytestmark = pytest.mark.browser

REDIS_DB = 7  # a database of the test Redis for this station's jobs alone
WATCH_URL_PATH = "/scans/slot?watch=1"  # then "&after=<newest scan id it knows>"
# The button scans with the default profile: its 36 frames are kept (the page must count them),
# but small frames and a shorter settle time: the shipped profile's 2028x1520 frames and
# 0.3 s settle made the scan most of this test's time. It still lasts about 9 s, so the page
# (whose idle slot asks every 3 s) and the phone page find it running.
BUTTON_PROFILE = {"frames": 36, "settle_seconds": 0.2, "resolution": [320, 240],
                  "jpeg_quality": 80}
@pytest.fixture(scope="module")
def station(tmp_path_factory, redis_server):
    yield from live_station(tmp_path_factory, redis_server, REDIS_DB, "browser-button", button=True)


def _shot(page, name: str) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=True)


def _api_put_profile(station: LiveStation, key: str, name: str, body: dict) -> None:
    request = urllib.request.Request(
        station.url + f"/api/v1/profiles/{name}", data=json.dumps(body).encode(), method="PUT",
        headers={"X-Api-Key": key, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status in (200, 201)


def _api_start_scan(station: LiveStation, key: str, **body) -> dict:
    request = urllib.request.Request(
        station.url + "/api/v1/scans", data=json.dumps(body).encode(), method="POST",
        headers={"X-Api-Key": key, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 202
        return json.load(answer)["scan"]


def test_open_dashboard_follows_scans_started_by_the_button_and_the_api(chromium, station):
    from playwright.sync_api import expect

    context, page, requests, failures = open_page(chromium)
    navigations: list[str] = []
    try:
        # First run: the first visitor creates the admin and lands on the dashboard.
        page.goto(station.url + "/")
        expect(page).to_have_url(re.compile(r"/setup$"))
        page.fill("input[name=name]", "admin")
        page.fill("input[name=password]", "correct horse battery")
        page.click("button[type=submit]")
        expect(page).to_have_url(station.url + "/")
        page.on("framenavigated", lambda frame: navigations.append(frame.url))

        slot = page.locator("#scan-slot")
        progress = page.locator("#scan-progress")
        expect(slot).to_have_attribute("data-slot", "watching")
        expect(progress).to_have_attribute("data-status", "idle")
        expect(page.locator(".start-scan")).to_be_visible()
        # The idle slot asks the station, slowly, whether a scan started elsewhere.
        watch_url = station.url + WATCH_URL_PATH

        def watching(request) -> bool:
            return request.url.startswith(watch_url)

        with page.expect_request(watching, timeout=10_000):
            pass
        _shot(page, "dashboard-idle")

        # --- the person at the turntable presses the start button ----------------------
        key = station.create_api_key()
        _api_put_profile(station, key, "standard", BUTTON_PROFILE)
        station.press_button()
        expect(slot).to_have_attribute("data-slot", "following", timeout=10_000)
        expect(progress).to_have_attribute("data-scan-id", re.compile(r"\d+"))
        button_scan = progress.get_attribute("data-scan-id")
        expect(progress).to_contain_text("from the button")
        expect(progress).to_have_attribute("data-status", re.compile(r"queued|running"))
        expect(page.locator(".start-scan")).to_be_hidden()  # one scan at a time
        # The press created today's session: the current-session panel says so at once.
        expect(page.locator("#current-heading")).to_have_text(
            re.compile(r"Session \d{4}-\d{2}-\d{2}"))
        # The frames count up on the open page.
        expect(progress.locator(".frames")).to_have_text(re.compile(r"^([1-9]\d*) / 36$"),
                                                         timeout=20_000)
        _shot(page, "dashboard-button-scan")
        # The same live scan on a phone, loaded while it runs: it fits the screen.
        phone = chromium.new_context(viewport={"width": 390, "height": 844},
                                     storage_state=context.storage_state())
        small = phone.new_page()
        small.goto(station.url + "/")
        expect(small.locator("#scan-slot")).to_have_attribute("data-slot", "following")
        overflow = small.evaluate("() => document.documentElement.scrollWidth - innerWidth")
        assert overflow <= 0, f"the dashboard scrolls sideways on a phone by {overflow}px"
        _shot(small, "phone-dashboard-button-scan")
        phone.close()
        expect(progress).to_have_attribute("data-status", "completed", timeout=60_000)
        expect(progress).to_contain_text("36 / 36")

        # Done: the finished scan stays in view, the start form is back, and the slot
        # watches slowly again instead of polling the finished scan's progress.
        expect(slot).to_have_attribute("data-slot", "watching")
        expect(progress).to_have_attribute("data-scan-id", button_scan)
        expect(page.locator(".start-scan")).to_be_visible()
        current = page.locator("#current-session .stats")
        expect(current.locator("div", has_text="Scans").locator("dd")).to_have_text("1")
        progress_url = f"{station.url}/scans/{button_scan}/progress"
        assert any(url == progress_url for url in requests), "the progress never polled"
        polls = sum(1 for url in requests if url == progress_url)
        watches = sum(1 for url in requests if url.startswith(watch_url))
        with page.expect_request(watching, timeout=10_000):
            pass  # the slow watch goes on...
        page.wait_for_timeout(1500)  # ...and 1.5 more progress periods pass
        assert sum(1 for url in requests if url == progress_url) == polls, (
            "the finished scan's progress was still polled")
        assert sum(1 for url in requests if url.startswith(watch_url)) > watches
        _shot(page, "dashboard-button-done")

        # --- a script starts the next scan through the API --------------------------------
        api_scan = _api_start_scan(station, key, profile="quick",
                                   frames=3)
        expect(progress).to_have_attribute("data-scan-id", str(api_scan["id"]),
                                           timeout=10_000)
        expect(progress).to_contain_text("from the API")
        expect(progress).to_have_attribute("data-status", "completed", timeout=30_000)
        expect(progress).to_contain_text("3 / 3")
        expect(slot).to_have_attribute("data-slot", "watching")
        expect(current.locator("div", has_text="Scans").locator("dd")).to_have_text("2")

        assert navigations == [], f"the page was reloaded or left: {navigations}"
        assert not failures, f"JavaScript errors on the page: {failures}"
    except Exception:
        _shot(page, "button-failure")
        for name in ("web", "worker", "button"):
            print(f"--- {name} log ---\n" + station.log_text(name))
        raise
    finally:
        context.close()
