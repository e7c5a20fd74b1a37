"""Settings and keys in Debian's chromium under the station's CSP, against a live `scanner
web` + `scanner worker` on the mock rig (issue 14): a profile edited on the settings page
(htmx, CSRF header from base.html) is what the next scan takes, a bad ring is refused with
a sentence next to its form, reset brings config/scanner.toml's back; and on the keys page
an admin makes an API key that works at once and stops working when revoked."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.web.conftest import chromium  # noqa: F401 - the module-scoped browser fixture
from tests.web.live_station import SCREENS, live_station, open_page

pytestmark = pytest.mark.browser

REDIS_DB = 4  # a database of the test Redis for this module's station alone
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def station(tmp_path_factory, redis_server):
    yield from live_station(tmp_path_factory, redis_server, REDIS_DB, "settings")


def _api(station, path: str, key: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        station.url + path, method="GET" if body is None else "POST",
        data=None if body is None else json.dumps(body).encode(),
        headers={"X-Api-Key": key, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _sign_in(page, station) -> None:
    page.goto(station.url + "/login")
    page.fill("input[name=name]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(station.url + "/")


@pytest.fixture(scope="module")
def admin(station):
    station.run_cli("user", "create", "admin", "--admin", "--password-stdin",
                    input=PASSWORD + "\n")
    return "admin"


def _watch(page) -> list[str]:
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text)
            if "Content Security Policy" in m.text else None)
    return refused


def test_settings_round_trip_in_a_browser(chromium, station, admin) -> None:  # noqa: F811
    key = station.create_api_key("settings-check")
    context, page, _requests, failures = open_page(chromium)
    refused = _watch(page)
    try:
        _sign_in(page, station)
        page.click("nav >> text=Settings")
        page.wait_for_url(station.url + "/settings")
        quick = page.locator('[data-profile="quick"]')
        assert quick.locator("[data-from-config]").count() == 1
        quick.locator("input[name=frames]").fill("16")
        quick.locator("textarea[name=rings]").fill("20 6\n40 4")
        quick.locator("input[name=auto_reconstruct]").check()
        quick.locator("button:has-text('Save')").click()
        # htmx swapped the section: still this page, the card says it is saved and changed.
        page.wait_for_selector('[data-profile="quick"] [data-saved]')
        assert page.url == station.url + "/settings"
        assert page.locator('[data-profile="quick"] [data-customised]').count() == 1
        status, body = _api(station, "/api/v1/profiles/quick", key)
        assert status == 200 and body["profile"]["rings"] == [
            {"elevation_deg": 20.0, "frames": 6}, {"elevation_deg": 40.0, "frames": 4}]
        assert body["profile"]["auto_reconstruct"] is True

        # After a reload the form shows what was stored.
        page.reload()
        quick = page.locator('[data-profile="quick"]')
        assert quick.locator("textarea[name=rings]").input_value() == "20 6\n40 4\n"
        assert quick.locator("input[name=auto_reconstruct]").is_checked()

        # The next scan of that profile takes the stored rings.
        status, body = _api(station, "/api/v1/scans", key, {"profile": "quick"})
        assert status == 202 and body["scan"]["frames_planned"] == 10, body

        # A ring the camera cannot reach: a sentence next to the form, nothing stored.
        quick.locator("textarea[name=rings]").fill("85 6")
        quick.locator("button:has-text('Save')").click()
        error = page.locator('[data-profile="quick"] .error-slot .error')
        error.wait_for()
        assert "camera tilts from 0° to 60°" in error.inner_text()
        assert _api(station, "/api/v1/profiles/quick", key)[1]["profile"]["rings"][0][
            "elevation_deg"] == 20.0

        # Reset to default: config/scanner.toml's profile is back.
        asked: list[str] = []
        page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
        page.locator('[data-profile="quick"] [data-reset]').click()
        page.wait_for_selector('[data-profile="quick"] [data-from-config]')
        assert asked == ["Reset quick to the settings in config/scanner.toml?"]
        assert _api(station, "/api/v1/profiles/quick", key)[1]["profile"]["frames"] == 12
        SCREENS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENS / "settings-desktop.png"), full_page=True)
    finally:
        context.close()
    assert refused == [] and failures == []


def test_keys_page_in_a_browser(chromium, station, admin) -> None:  # noqa: F811
    context, page, _requests, failures = open_page(chromium)
    refused = _watch(page)
    try:
        _sign_in(page, station)
        page.click("nav >> text=Station")
        page.wait_for_url(station.url + "/station")
        page.click("text=Logins and API keys")
        page.wait_for_url(station.url + "/admin")
        page.fill("input[placeholder='e.g. turntable-script']", "turntable-script")
        page.click("button:has-text('Create key')")
        new_key = page.locator("[data-new-key]").inner_text().strip()
        assert len(new_key) > 20
        assert _api(station, "/api/v1/profiles", new_key)[0] == 200
        row = page.locator("tr", has_text="turntable-script")
        assert row.count() == 1
        row.locator("button:has-text('Revoke')").click()
        page.wait_for_url(station.url + "/admin")
        assert page.locator("tr", has_text="turntable-script").count() == 0
        status, body = _api(station, "/api/v1/profiles", new_key)
        assert status == 401 and body["error"]["code"] == "unauthorized"
        # The key is shown once: not on the page any more.
        page.goto(station.url + "/admin")
        assert new_key not in page.content()
    finally:
        context.close()
    assert refused == [] and failures == []


@pytest.mark.parametrize("path", ["/settings", "/station"])
def test_settings_and_station_fit_a_phone(chromium, station, admin, path) -> None:  # noqa: F811
    context = chromium.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                   has_touch=True, device_scale_factor=2)
    page = context.new_page()
    page.set_default_timeout(15_000)
    failures: list[str] = []
    page.on("pageerror", lambda error: failures.append(str(error)))
    try:
        _sign_in(page, station)
        page.goto(station.url + path)
        # Nothing wider than the screen: no sideways scrolling on a phone.
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow} px wider than a phone's screen"
        SCREENS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENS / f"{path.strip('/')}-phone.png"), full_page=True)
    finally:
        context.close()
    assert failures == []
