"""The scan review and the scan controls in a real browser (Debian's chromium through
Playwright) against a live station with a simulated tilt axis: a two-ring scan taken through
the API is reviewed by ring, its lightbox follows ←/→ and closes with Esc (focus back on the
thumbnail), the mask overlay toggles; the job queues page leads back to the station; after
Start and Pause keyboard focus stays on the scan controls. Screenshots of the main screens
(desktop and phone) go to SCANNER_SCREENSHOTS (default /tmp/screens; the README's are made with
SCANNER_SCREENSHOTS=docs/screenshots)."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from tests.web.live_station import SCREENS, LiveStation

pytestmark = pytest.mark.browser

REDIS_DB = 12  # a database of the test Redis for this module's station alone
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
RINGS = [{"elevation_deg": 20, "frames": 3}, {"elevation_deg": 40, "frames": 3}]


@pytest.fixture(scope="module")
def station(tmp_path_factory, redis_server):
    import redis

    url = redis_server.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    connection = redis.Redis.from_url(url)
    connection.flushdb()
    data_dir = tmp_path_factory.mktemp("review") / "data"
    data_dir.mkdir()
    live = LiveStation(data_dir, url, SCANNER_MOCK_CAPTURE_SECONDS="0.02",
                       SCANNER_MOCK_SECONDS_PER_REV="1", SCANNER_TILT="servo")
    try:
        live.start()
        yield live
    finally:
        live.stop()
        connection.flushdb()


def _api(station: LiveStation, key: str, method: str, path: str, body: dict | None = None):
    request = urllib.request.Request(
        station.url + path, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"X-Api-Key": key, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def _scan_until_done(station: LiveStation, key: str) -> dict:
    scan = _api(station, key, "POST", "/api/v1/scans", {"rings": RINGS})["scan"]
    deadline = time.monotonic() + 90
    while scan["status"] != "completed":
        assert time.monotonic() < deadline, f"the scan did not complete: {scan}"
        assert scan["status"] in ("queued", "running"), scan
        time.sleep(0.3)
        scan = _api(station, key, "GET", f"/api/v1/scans/{scan['id']}")["scan"]
    return scan


def _sign_up(page, station: LiveStation) -> None:
    page.goto(station.url + "/")
    page.fill("input[name=name]", "admin")
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url(station.url + "/")


def _all_images_loaded(page) -> None:
    page.wait_for_function(
        "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")


def test_review_lightbox_and_focus_in_a_real_browser(chromium, station):
    from playwright.sync_api import expect

    context = chromium.new_context(viewport=SIZES["desktop"])
    page = context.new_page()
    page.set_default_timeout(15_000)
    failures: list[str] = []
    page.on("pageerror", lambda error: failures.append(str(error)))
    try:
        _sign_up(page, station)
        key = station.create_api_key()
        scan = _scan_until_done(station, key)

        # --- review: frames by ring, in path order ------------------------------------
        page.goto(f"{station.url}/scans/{scan['id']}")
        rings = page.locator("#scan-review .ring")
        expect(rings).to_have_count(2)
        expect(rings.nth(0).locator(".ring-title")).to_contain_text("Ring 1 · 20°")
        expect(rings.nth(1).locator(".ring-title")).to_contain_text("Ring 2 · 40°")
        expect(rings.nth(0).locator(".thumb img")).to_have_count(3)
        expect(rings.nth(1).locator(".thumb img")).to_have_count(3)
        _all_images_loaded(page)
        ids = [int(i) for i in page.locator("#scan-review .thumb").evaluate_all(
            "els => els.map(e => e.dataset.captureId)")]
        assert ids == sorted(ids), "thumbnails are not in the order the frames were taken"
        download = page.locator("#scan-review >> text=Download scan (ZIP)").get_attribute("href")
        assert page.request.get(station.url + download).body()[:2] == b"PK"

        # --- the lightbox: ←/→ move, Esc closes and focus goes back ------------------------
        first_thumb = page.locator("#scan-review .thumb a").first
        first_thumb.click()
        lightbox = page.locator("#lightbox")
        view = lightbox.locator(".frame-view")
        expect(lightbox).to_have_attribute("open", "")
        expect(view).to_have_attribute("data-capture-id", str(ids[0]))
        expect(view).to_contain_text("Elevation")
        expect(view).to_contain_text("µs")  # the exposure from the scan's metadata
        page.keyboard.press("ArrowRight")
        expect(view).to_have_attribute("data-capture-id", str(ids[1]))
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")  # across the ring boundary
        expect(view).to_have_attribute("data-capture-id", str(ids[3]))
        expect(view).to_contain_text("ring 2")
        page.keyboard.press("ArrowLeft")
        expect(view).to_have_attribute("data-capture-id", str(ids[2]))
        # The mock rig writes a mask per frame: the overlay toggles.
        mask = view.locator(".frame-mask")
        expect(mask).to_be_hidden()
        view.locator(".mask-toggle").click()
        expect(mask).to_be_visible()
        page.wait_for_function("() => document.querySelector('.frame-mask').naturalWidth > 0")
        _shot(page, "scan-review-lightbox-desktop")
        page.keyboard.press("Escape")
        expect(lightbox).not_to_have_attribute("open", "")
        assert page.evaluate("document.activeElement === document.querySelector("
                             "'#scan-review .thumb a')"), "focus did not return to the thumbnail"

        # --- the filter ------------------------------------------------------------------
        page.click("#scan-review >> text=Invalid")
        expect(page.locator("#scan-review")).to_contain_text("No invalid frames.")
        page.click("#scan-review >> text=All")
        expect(page.locator("#scan-review .thumb")).to_have_count(6)

        # --- screenshots of the main screens ------------------------------------------------
        for size, viewport in SIZES.items():
            page.set_viewport_size(viewport)
            page.goto(f"{station.url}/scans/{scan['id']}")
            _all_images_loaded(page)
            page.locator("#scan-review").scroll_into_view_if_needed()
            _shot(page, f"scan-review-{size}")
            page.goto(f"{station.url}/sessions/{scan['session_id']}")
            expect(page.locator(".thumbs img")).to_have_count(6)
            _all_images_loaded(page)
            _shot(page, f"session-{size}")
            page.goto(station.url + "/")
            _shot(page, f"dashboard-{size}")
        page.set_viewport_size(SIZES["desktop"])

        # --- the job queues page has a way back ------------------------------------------
        page.click("nav >> text=Job queues")
        back = page.locator("nav.station-back a")
        expect(back).to_have_text("← Back to the station")
        back.click()
        expect(page).to_have_url(station.url + "/")

        # --- focus stays on the controls after Start and Pause -------------------------------
        page.goto(station.url + "/")
        page.select_option("select[name=profile]", "quick")
        page.fill("input[name=frames]", "200")
        page.locator("text=Start scan").focus()
        page.keyboard.press("Enter")
        progress = page.locator("#scan-progress")
        expect(progress).to_have_attribute("data-status", "running", timeout=30_000)
        pause = progress.locator("button", has_text="Pause")
        expect(pause).to_be_focused()
        page.wait_for_timeout(1500)  # the panel polls itself each second: focus survives
        expect(pause).to_be_focused()
        page.keyboard.press("Enter")
        resume = progress.locator("button", has_text="Resume")
        # Paused once the job reaches its next frame: on a loaded machine that can take longer
        # than an expectation's default 5 s (seen in CI with the scan at 18 of 200 frames).
        expect(progress).to_have_attribute("data-status", "paused", timeout=30_000)
        expect(resume).to_be_focused()
        page.on("dialog", lambda dialog: dialog.accept())  # "Cancel this scan?"
        progress.locator("button", has_text="Cancel").click()
        expect(progress).to_have_attribute("data-status", "cancelled", timeout=30_000)
        # The 3D model viewer (reconstruction slice) is refused WebAssembly by the page's CSP;
        # that is its own matter, every other page error is ours.
        ours = [f for f in failures if "WebAssembly" not in f]
        assert ours == [], ours
    finally:
        context.close()


def _shot(page, name: str) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=False)
