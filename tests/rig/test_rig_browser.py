"""The Rig page in Debian's chromium under the station's CSP, against a live `scanner web` and
`scanner worker` on the mock rig: the <img> gets MJPEG frames from the worker's preview
(their pixels change when the platter turns), the framing overlay is drawn, the controls post
through htmx and the true platter follows, and the preview job ends within seconds of the tab
closing. Screenshots (desktop and phone) land in SCANNER_SCREENSHOTS (default /tmp/screens)."""

from __future__ import annotations

import time

import pytest
import redis

from scanner_app.rig import channel
from tests.support import wait_until
from tests.web.conftest import chromium  # noqa: F401 - the module-scoped browser fixture
from tests.web.live_station import SCREENS, LiveStation, open_page

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"

# The image as the page shows it, reduced to a short fingerprint (same origin: readable).
PIXELS = """() => {
  const img = document.getElementById('rig-preview-img');
  if (!img.complete || img.naturalWidth !== 640) return null;
  const c = document.createElement('canvas'); c.width = 64; c.height = 48;
  const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0, 64, 48);
  const d = ctx.getImageData(0, 0, 64, 48).data; let sum = 0;
  for (let i = 0; i < d.length; i += 4) {
    sum = (sum * 31 + d[i] + d[i + 1] * 3 + d[i + 2] * 7) % 1000000007;
  }
  return sum;
}"""
OVERLAY_DRAWN = """() => {
  const c = document.getElementById('rig-overlay');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  for (let i = 3; i < d.length; i += 4) if (d[i]) return true;
  return false;
}"""


@pytest.fixture(scope="module")
def station(tmp_path_factory, rig_redis_server):
    connection = redis.Redis.from_url(rig_redis_server)
    connection.flushdb()
    data_dir = tmp_path_factory.mktemp("rig-browser") / "data"
    data_dir.mkdir()
    live = LiveStation(data_dir, rig_redis_server, SCANNER_MOCK_CAPTURE_SECONDS="0.02",
                       SCANNER_MOCK_SECONDS_PER_REV="1")
    try:
        live.start()
        live.redis = connection
        yield live
    finally:
        live.stop()
        connection.flushdb()
        connection.close()


def _true_angle(station: LiveStation) -> float:
    from hal.mock.platter import MockPlatter
    from scanner_app.config import load_settings
    from tests.support import station_env

    hal = load_settings(env=station_env(station.data_dir)).hal
    return MockPlatter(hal.platter_file, detent_deg=hal.mock.detent_deg).true_angle()


def test_preview_and_controls_in_a_browser(chromium, station) -> None:  # noqa: F811
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
        page.click("nav >> text=Rig")
        page.wait_for_url(station.url + "/rig")

        # Frames from the worker's camera arrive in the <img> (640×480, not the placeholder).
        before = wait_until(lambda: page.evaluate(PIXELS), 30, "a preview frame in the <img>")
        wait_until(lambda: page.evaluate(OVERLAY_DRAWN), 15, "the framing overlay")
        page.wait_for_function(
            "document.getElementById('rig-caption').textContent.startsWith('Live:')")
        assert "exposure" in page.inner_text("#rig-caption")
        SCREENS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENS / "rig-desktop.png"), full_page=True)

        # A control through htmx: the true platter turns, the state panel says so, and the
        # stream shows the turned platter (different pixels).
        page.click('button[data-action="turn-by"][data-step="45"]')
        page.wait_for_selector('#rig-state[data-angle="45.0"]', timeout=30_000)
        assert "The platter turned to 45°." in page.inner_text("#rig-done")
        assert abs(_true_angle(station) - 45) < 0.01
        wait_until(lambda: page.evaluate(PIXELS) not in (None, before), 30,
                   "the stream to show the turned platter")
        page.fill("input[name=to]", "0")
        page.click('button[data-action="turn-to"]')
        page.wait_for_selector('#rig-state[data-angle="0.0"]', timeout=30_000)

        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=str(SCREENS / "rig-phone.png"), full_page=True)
        # The preview runs (a control makes it yield; the open page brings it back).
        wait_until(lambda: station.redis.get(channel.JOB_KEY) is not None, 30,
                   "the preview to run while the page is open")
    finally:
        context.close()  # the tab goes away
    closed = time.monotonic()
    wait_until(lambda: station.redis.get(channel.JOB_KEY) is None and
               channel.latest_frame(station.redis)[1] is None, 15,
               f"the preview to end after the tab closed:\n{station.log_text('worker')}")
    assert time.monotonic() - closed < 10
    state = channel.last_state(station.redis)
    assert state["light_on"] is False
    assert refused == [] and failures == []
