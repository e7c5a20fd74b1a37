"""The calibration page in Debian's chromium under the station's CSP, against a live `scanner
web` and `scanner worker` on the mock rig: Calibrate posts through htmx (its CSRF header from
base.html), the panel polls itself to the saved calibration, and nothing is refused."""

from __future__ import annotations

import pytest

from hal.calibration import load_calibration
from tests.web.conftest import chromium  # noqa: F401 - the module-scoped browser fixture
from tests.web.live_station import live_station, open_page

REDIS_DB = 15  # this station's jobs are for this station's worker alone
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def station(tmp_path_factory, redis_server):
    yield from live_station(tmp_path_factory, redis_server, REDIS_DB, "calibration")


def test_calibrate_from_the_page_in_a_browser(chromium, station) -> None:  # noqa: F811
    station.run_cli("user", "create", "admin", "--admin", "--password-stdin",
                    input=PASSWORD + "\n")
    context, page, _requests, failures = open_page(chromium)
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text)
            if "Content Security Policy" in m.text else None)
    try:
        page.goto(station.url + "/login")
        page.fill("input[name=name]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(station.url + "/")
        page.click("nav >> text=Calibration")
        page.wait_for_url(station.url + "/calibration")
        assert "The rig has no calibration" in page.inner_text("#calibration")
        page.fill("input[name=views]", "6")
        page.click("#calibration button[type=submit]")
        # Still this page (htmx swapped the panel; a plain post would have redirected).
        page.wait_for_selector("#calibration .calibration-run", timeout=15_000)
        page.wait_for_selector('#calibration .calibration-run[data-status="saved"]',
                               timeout=120_000)
        current = load_calibration(station.data_dir / "calibration" / "current.json")
        facts = page.inner_text("#calibration .calibration-facts")
        assert f"{current.intrinsics.fx:.1f} px" in facts and current.id in facts
        assert page.locator("#calibration button[type=submit]").count() == 1  # the form is back
        page.screenshot(path=str(station.data_dir.parent / "calibration.png"), full_page=True)
    finally:
        context.close()
    assert refused == [] and failures == []
