"""The Rig page in a signed-in browser (Flask client): the preview, the controls as forms
with CSRF that htmx posts, the answers (the rig's new state and what was done), refusals as
sentences in the page's error partial, and that page, stream and API need a login or key."""

from __future__ import annotations

from tests.web.conftest import HX, sign_in


def test_the_page_shows_the_preview_and_the_controls(make_station) -> None:
    station = make_station()
    browser = sign_in(station.app)
    html = browser.get("/rig").get_data(as_text=True)
    assert "<h1>Rig</h1>" in html
    assert 'href="/rig" aria-current="page">Rig</a>' in html  # in the nav
    assert '<img id="rig-preview-img" src="/station/preview.mjpg"' in html
    assert 'data-meta-url="/api/v1/rig/preview"' in html
    for action in ("/rig/turn", "/rig/home", "/rig/light", "/rig/snapshot", "/rig/button"):
        assert f'hx-post="{action}"' in html and f'action="{action}"' in html
    assert html.count('name="csrf_token"') >= 10  # every form carries its token
    assert "Press the start button (mock)" in html  # mock hardware: the virtual button
    assert "<script>" not in html and "style=" not in html  # CSP: nothing inline
    assert '<script src="/static/rig.js" defer></script>' in html


def test_a_control_from_the_page_answers_with_the_new_state(make_station) -> None:
    station = make_station()
    station.start_worker()
    browser = sign_in(station.app)
    answer = browser.post("/rig/turn", data={"to": "90"}, headers=HX)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    html = answer.get_data(as_text=True)
    assert 'id="rig-state"' in html and 'data-angle="90.0"' in html
    assert "The platter turned to 90°." in html and 'hx-swap-oob="true"' in html
    assert abs(station.true_angle() - 90) < 0.01
    # Without htmx (no JavaScript) the form post redirects back to the page.
    answer = browser.post("/rig/turn", data={"by": "-45"})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/rig")
    assert abs(station.true_angle() - 45) < 0.01
    assert 'data-angle="45.0"' in browser.get("/rig/state", headers=HX).get_data(as_text=True)


def test_refusals_are_sentences_in_the_error_partial(make_station) -> None:
    station = make_station()
    browser = sign_in(station.app)
    scan = station.client.post("/api/v1/scans", json={"frames": 3}).get_json()["scan"]
    answer = browser.post("/rig/home", headers=HX)
    assert answer.status_code == 409
    html = answer.get_data(as_text=True)
    assert html.startswith('<div class="error" role="alert" data-code="rig_busy">')
    assert f"Scan {scan['id']} is queued and has the rig to itself" in html
    assert "Traceback" not in html
    page = browser.get("/rig").get_data(as_text=True)
    assert 'data-busy="true"' in page and f"Scan {scan['id']} is queued" in page
    answer = browser.post("/rig/turn", data={"to": ""}, headers=HX)
    assert answer.status_code == 400
    assert "Type an angle from 0 to 360 to turn to." in answer.get_data(as_text=True)


def test_page_stream_and_api_need_a_login_or_key(make_station) -> None:
    station = make_station()
    anonymous = station.app.test_client()
    for path in ("/rig", "/station/preview.mjpg", "/station/preview.jpg"):
        answer = anonymous.get(path)
        assert answer.status_code == 302 and "/login" in answer.headers["Location"], path
    answer = anonymous.get("/api/v1/rig")
    assert answer.status_code == 401
    assert anonymous.post("/api/v1/rig/turn", json={"to": 1}).status_code == 401


def test_without_a_worker_the_preview_says_so_at_once(make_station) -> None:
    station = make_station()
    browser = sign_in(station.app)
    answer = browser.get("/station/preview.jpg", headers={"Accept": "application/json"})
    assert answer.status_code == 409
    assert answer.get_json()["error"]["message"].startswith(
        "No worker drives the rig, so there is no preview.")
    assert station.redis.llen("rq:queue:hardware") == 0  # no job left for nobody


def test_at_most_three_streams_hold_request_threads(make_station) -> None:
    from scanner_app.rig.relay import MAX_STREAMS

    station = make_station()
    browser = sign_in(station.app)
    streams = [browser.get("/station/preview.mjpg", buffered=False) for _ in range(MAX_STREAMS)]
    assert [s.status_code for s in streams] == [200] * MAX_STREAMS
    answer = browser.get("/station/preview.mjpg", headers={"Accept": "application/json"})
    assert answer.status_code == 409
    assert answer.get_json()["error"]["message"].startswith("3 previews are open already")
    streams.pop().close()  # a tab closed: its place is free again
    again = browser.get("/station/preview.mjpg", buffered=False)
    assert again.status_code == 200
    for stream in reversed((*streams, again)):  # one thread here: last opened, first closed
        stream.close()


def test_tilt_from_the_page_where_the_rig_has_a_tilt_axis(make_station) -> None:
    from hal.tilt_mock import MockArm

    station = make_station(SCANNER_TILT="step_dir")
    browser = sign_in(station.app)
    html = browser.get("/rig").get_data(as_text=True)
    assert 'hx-post="/rig/tilt"' in html and 'min="0.0" max="60.0"' in html
    station.start_worker()
    answer = browser.post("/rig/tilt", data={"to": "40"}, headers=HX)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert "The camera is tilted to 40°." in answer.get_data(as_text=True)
    arm = MockArm(station.hal.arm_file, station.hal.tilt.rest_elevation_deg)
    assert abs(arm.true_elevation() - 40) < 0.05
    # Without a tilt axis the page has no tilt form.
    assert 'hx-post="/rig/tilt"' not in sign_in(make_station().app).get("/rig").get_data(
        as_text=True)


def test_without_a_worker_the_stream_says_why_in_its_frame(make_station) -> None:
    from scanner_app.rig.relay import NO_PREVIEW, STARTING, placeholder
    from tests.rig.test_preview import _jpeg_of

    station = make_station()
    browser = sign_in(station.app)
    stream = browser.get("/station/preview.mjpg", buffered=False)
    parts = iter(stream.response)
    shown = [_jpeg_of(next(parts)) for _ in range(2)]
    stream.close()
    assert shown[-1] == placeholder(NO_PREVIEW) != placeholder(STARTING)
