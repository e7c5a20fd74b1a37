"""Issue 9, finding 6: ids beyond what the database holds (2**63 overflows SQLite's INTEGER,
2**31 PostgreSQL's) gave 500 in every route, JSON field and form field, and full-width
digits were taken as ids. Now: 404 with the error body (400 where the value is not a number
at all), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from scanner_app.platform.web.converters import MAX_ID, parse_id

HUGE = [2**31, 2**63, 2**64 + 1, 10**30]
SAFE_METHODS_FIRST = ("GET", "POST", "PUT", "PATCH", "DELETE")


def id_routes(app) -> list[tuple[str, str, list[str]]]:
    """(method, rule, names of its <int:...> parts) for every route that takes an id."""
    found = []
    for rule in app.url_map.iter_rules():
        ints = [name for name, converter in rule._converters.items()
                if converter.__class__.__name__ == "IdConverter"]
        if not ints:
            continue
        for method in SAFE_METHODS_FIRST:
            if method in (rule.methods or ()):
                found.append((method, rule.rule, ints))
    return found


def new_session(client) -> int:
    body = client.post("/api/v1/sessions", json={"name": "Trial", "make_current": False}
                       ).get_json()
    return body.get("session", body)["id"]  # bare or wrapped: both are the contract


def fill(rule: str, names: list[str], text: str) -> str:
    for name in names:
        rule = rule.replace(f"<int:{name}>", text)
    return rule.replace("<path:relpath>", "x.jpg")


def test_every_id_route_answers_404_for_ids_the_database_cannot_hold(app, client):
    routes = id_routes(app)
    assert len(routes) >= 20  # sessions, scans, uploads, captures, files, admin...
    for method, rule, names in routes:
        for value in [*(str(n) for n in HUGE), "\uff11\uff12", "\u0661\u0662", "1\u00b2"]:
            url = fill(rule, names, value)
            answer = client.open(url, method=method, json={} if method != "GET" else None)
            assert answer.status_code == 404, (method, url, answer.status_code)
            if url.startswith("/api/"):
                assert answer.get_json()["error"]["code"] == "not_found", (method, url)


def test_the_largest_id_is_simply_unknown(client):
    answer = client.get(f"/api/v1/sessions/{MAX_ID}")
    assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "not_found"
    assert client.get(f"/api/v1/scans/{MAX_ID}").status_code == 404
    assert client.get(f"/api/v1/uploads/{MAX_ID}").status_code == 404


@pytest.mark.parametrize("value", [2**31, 2**63, 2**64, str(2**63), "9" * 40])
def test_json_id_fields_beyond_the_database_are_404(client, value):
    session_id = new_session(client)
    for method, url, body in (
        ("PUT", "/api/v1/sessions/current", {"session_id": value}),
        ("POST", f"/api/v1/sessions/{session_id}/merge", {"into": value}),
        ("POST", "/api/v1/scans", {"session_id": value}),
    ):
        answer = client.open(url, method=method, json=body)
        assert answer.status_code == 404, (url, answer.get_data(as_text=True))
        assert answer.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("value", ["\uff11\uff12", "\u0661", "-1", "1.5", "+3", True, 1.0, [1]])
def test_json_id_fields_that_are_not_ids_are_400(client, value):
    answer = client.put("/api/v1/sessions/current", json={"session_id": value})
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == "invalid_id"


def test_form_id_fields_beyond_the_database_are_404_and_full_width_is_400(client):
    session_id = new_session(client)
    for url, field in (("/current", "session_id"), (f"/sessions/{session_id}/merge", "into"),
                       ("/scans", "session_id")):
        for value in (str(2**31), str(2**63), "9" * 40):
            answer = client.post(url, data={field: value}, headers={"HX-Request": "true"})
            assert answer.status_code == 404, (url, value, answer.status_code)
        for value in ("\uff11\uff12", "\u0661", "-1", "1e3"):
            answer = client.post(url, data={field: value}, headers={"HX-Request": "true"})
            assert answer.status_code == 400, (url, value, answer.status_code)
    frames = client.post("/scans", data={"frames": "\uff11\uff12"}, headers={"HX-Request": "1"})
    assert frames.status_code == 400 and b"whole number" in frames.data


def test_parse_id_takes_ascii_digits_only():
    assert parse_id("42") == 42 and parse_id("007") == 7 and parse_id(42) == 42
    for bad in ("\uff14\uff12", "\u0664\u0662", "4\u00b2", "-4", "+4", " 4", "4 ", "", "4.0",
                True, None, 4.0, str(MAX_ID + 1), MAX_ID + 1, 0):
        assert parse_id(bad) is None, bad
    assert parse_id(str(2**63), maximum=None) == 2**63


def test_query_and_multipart_id_fields_beyond_the_database_are_404(client):
    import io

    from tests.support import jpeg_bytes

    assert client.get(f"/api/v1/scans?session_id={2**63}").status_code == 404
    assert client.get("/api/v1/scans?session_id=\uff11").status_code == 400
    upload = client.post("/api/v1/uploads", data={
        "session_id": str(2**63), "files": [(io.BytesIO(jpeg_bytes()), "a.jpg")]},
        content_type="multipart/form-data")
    assert upload.status_code == 404


def test_through_the_live_server(data_dir, database_url):
    """The same answers from `scanner web` (gunicorn) as from the test client: the report's
    500s came from the real server on both databases."""
    import requests

    from scanner_app.accounts.service import create_api_key
    from tests.accounts.live import live_web

    with live_web(data_dir, database_url) as web:
        with web.app.app_context():
            key = {"X-Api-Key": create_api_key("probe")}
        for path in (f"/api/v1/sessions/{2**63}", f"/api/v1/scans/{2**31}",
                     f"/api/v1/uploads/{2**64}", "/api/v1/sessions/%EF%BC%91",
                     f"/sessions/{2**63}"):
            answer = requests.get(web.base + path, headers=key, timeout=30)
            assert answer.status_code == 404, (path, answer.status_code)
        put = requests.put(web.base + "/api/v1/sessions/current", headers=key, timeout=30,
                           json={"session_id": 2**63})
        assert put.status_code == 404 and put.json()["error"]["code"] == "not_found"
        nul = requests.post(web.base + "/api/v1/sessions", headers=key, timeout=30,
                            json={"name": "Trial\u0000", "make_current": False})
        assert nul.status_code == 400 and nul.json()["error"]["code"] == "invalid_name"
        look_alike = requests.post(web.base + "/api/v1/sessions", headers=key, timeout=30,
                                   json={"name": "\u0405ession 2026-11-30"})
        assert look_alike.status_code == 400
