"""Search-as-you-type in the dashboard's current-session picker, in a real browser (Debian's
chromium through Playwright) under the station's CSP, against the station app served by a
real HTTP server on a SQLite station with more sessions than a picker shows."""

from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from tests.web.conftest import PASSWORD, sign_in
from tests.web.live_station import open_page

pytestmark = pytest.mark.browser


@pytest.fixture
def served(web_app):
    """The station app on a real socket (threaded WSGI server), with a login to sign in."""
    sign_in(web_app)  # creates the login "admin"
    server = make_server("127.0.0.1", 0, web_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_current_session_picker_searches_as_you_type(chromium, web_app, served):
    from playwright.sync_api import expect

    from tests.web.conftest import add_session

    for n in range(30):
        add_session(web_app, f"Trial {n:02d}")
    add_session(web_app, "Bowl of fruit")
    context, page, _requests, failures = open_page(chromium)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text)
            if "Content Security Policy" in m.text else None)
    try:
        page.goto(served + "/login")
        page.fill("input[name=name]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(served + "/")
        options = page.locator("#picker-current-select option")
        expect(options).to_have_count(20)  # the newest 20, not all 31
        expect(options.first).to_have_text("Bowl of fruit")

        search = page.locator("#picker-current-q")
        search.press_sequentially("trial 0", delay=40)
        expect(options).to_have_count(10)
        expect(options.first).to_have_text("Trial 09")
        search.fill("")
        search.press_sequentially("FRUIT", delay=40)
        expect(options).to_have_count(1)
        expect(options.first).to_have_text("Bowl of fruit")
        expect(search).to_be_focused()  # the search box was not swapped away while typing

        # Enter in the search box does not send the Make current form: a POST it sent would
        # leave before the click's, so exactly one POST /current is made.
        search.press("Enter")
        page.click("#current-session button:has-text('Make current')")
        expect(page.locator("#current-session .current-name")).to_contain_text("Bowl of fruit")
        expect(page.locator("#current-session")).to_contain_text("Chosen session")
        assert [url for url in posts if url.endswith("/current")] == [served + "/current"]

        page.locator("#picker-current-q").press_sequentially("no such thing", delay=20)
        expect(options).to_have_count(1)
        expect(options.first).to_contain_text("No session's name holds")
        assert failures == [] and refused == []
    finally:
        context.close()
