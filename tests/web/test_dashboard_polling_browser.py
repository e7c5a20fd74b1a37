"""The dashboard's polling panels under the station's CSP (htmx allowEval: false): no trigger
filter needs eval (htmx would log evalDisallowedError and poll anyway), and while the tab is
hidden the panels marked data-poll send nothing (static/station.js holds them); once the tab
is visible again they ask at once. Chromium against a live station."""

from __future__ import annotations

import time

import pytest

from tests.web.live_station import live_station, open_page

REDIS_DB = 3  # a database of the test Redis for this module's station alone (flushed)
SLOT = "/scans/slot?watch=1"  # the idle scan slot polls every 3 s, the station banner 5 s

# document.hidden as the test says: Chromium's own is false for a headless page.
FAKE_VISIBILITY = """
(() => {
  window.__hidden = false;
  Object.defineProperty(Document.prototype, "hidden", {
    configurable: true, get() { return window.__hidden; } });
  Object.defineProperty(Document.prototype, "visibilityState", {
    configurable: true, get() { return window.__hidden ? "hidden" : "visible"; } });
  window.__evalDisallowed = 0;
  document.addEventListener("htmx:evalDisallowedError", () => { window.__evalDisallowed++; });
})();
"""


def _set_hidden(page, hidden: bool) -> None:
    page.evaluate("(h) => { window.__hidden = h; "
                  "document.dispatchEvent(new Event('visibilitychange')); }", hidden)


@pytest.fixture(scope="module")
def station(tmp_path_factory, redis_server):
    yield from live_station(tmp_path_factory, redis_server, REDIS_DB, "dashboard-polling")


@pytest.mark.browser
def test_hidden_dashboard_sends_no_polls_and_resumes_when_visible(chromium, station) -> None:
    from playwright.sync_api import expect

    context, page, requests, failures = open_page(chromium)
    console_errors: list[str] = []

    def console(message) -> None:
        # Every console error counts, a missing favicon's 404 included (base.html links one).
        if message.type == "error":
            console_errors.append(f"{message.text} ({message.location.get('url') or ''})")

    page.on("console", console)
    page.add_init_script(FAKE_VISIBILITY)
    try:
        page.goto(station.url + "/")
        page.fill("input[name=name]", "admin")  # first run: the first login
        page.fill("input[name=password]", "correct horse battery")
        page.click("button[type=submit]")
        expect(page).to_have_url(station.url + "/")
        banner_url = page.locator("#station-status").get_attribute("hx-get")
        assert banner_url, "the station banner does not poll"
        polled = (SLOT, banner_url)

        def polls() -> int:
            return sum(1 for url in requests if any(p in url for p in polled))

        # Visible: the slot asks every 3 s.
        with page.expect_request(lambda r: SLOT in r.url, timeout=10_000):
            pass

        _set_hidden(page, True)
        page.wait_for_timeout(300)  # a request already under way may still finish
        before = polls()
        # Nothing to poll for: the absence of requests over more than two of the slot's
        # intervals (and one of the banner's) is the point.
        page.wait_for_timeout(7_500)
        assert polls() == before, [u for u in requests if any(p in u for p in polled)][-5:]

        # Visible again: the slot asks at once (visibilitychange), then keeps polling.
        started = time.monotonic()
        with page.expect_request(lambda r: SLOT in r.url, timeout=2_000):
            _set_hidden(page, False)
        assert time.monotonic() - started < 2.0
        with page.expect_request(lambda r: banner_url in r.url, timeout=10_000):
            pass
        with page.expect_request(lambda r: SLOT in r.url, timeout=10_000):
            pass

        assert page.evaluate("window.__evalDisallowed") == 0
        assert not [e for e in console_errors if "evalDisallowed" in e or "eval" in e.lower()]
        assert not console_errors, f"console errors on the dashboard: {console_errors}"
        assert not failures, f"JavaScript errors on the page: {failures}"
    finally:
        context.close()
