"""Every route of the station, walked from app.url_map: a state-changing request without the
page's CSRF token is refused before its view runs (the RQ dashboard's state-changing GETs are
refused outright), nothing is reachable anonymously except login, setup, static files and
the health check, and only a valid X-Api-Key stands in for the token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from werkzeug.routing import Rule

from scanner_app.models import ScanSession
from scanner_app.platform.extensions import db
from scanner_app.sessions import service as sessions
from tests.support import api_client, dispose
from tests.web.conftest import make_web_app, sign_in

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
PUBLIC = {"auth.login", "auth.setup", "static", "health.healthz"}
JSON = {"Accept": "application/json"}
NO_TOKEN = {**JSON, "X-CSRFToken": ""}  # an empty header: the test client adds none


@pytest.fixture
def app(data_dir) -> Iterator[Flask]:
    app = make_web_app(data_dir)
    yield app
    dispose(app)


def _url(app: Flask, rule: Rule) -> str:
    # Every argument of every route accepts 1 (ids, names, paths).
    with app.test_request_context():
        return app.url_map.bind("localhost").build(rule.endpoint, dict.fromkeys(rule.arguments,
                                                                                  1))


def _routes(app: Flask) -> list[tuple[Rule, str]]:
    return [(rule, method) for rule in app.url_map.iter_rules()
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})]


def _changes_state(rule: Rule, method: str) -> bool:
    # A dashboard route that also takes POST (requeue all) changes state on GET too.
    return method in UNSAFE or (rule.endpoint.startswith("rq_dashboard.")
                                and "POST" in (rule.methods or ()))


def test_every_state_changing_route_needs_the_csrf_token(app):
    with app.app_context():
        victim = sessions.create_manual_session("Victim").id
    person = sign_in(app)
    checked = []
    for rule, method in _routes(app):
        if not _changes_state(rule, method):
            continue
        url = _url(app, rule).replace("/1", f"/{victim}", 1)
        answer = person.open(url, method=method, headers=NO_TOKEN)
        refused = (answer.status_code == 400 and answer.is_json
                   and answer.get_json()["error"]["code"] == "csrf_failed") or (
            method == "GET" and answer.status_code == 405)
        assert refused, f"{method} {rule.rule} ({rule.endpoint}) answered {answer.status_code}"
        checked.append(f"{method} {rule.rule}")
    # The walk saw the routes the attack used, so it cannot pass by finding nothing.
    for route in ("POST /sessions/<int:session_id>/delete", "POST /scans",
                  "POST /logout", "POST /login", "DELETE /api/v1/sessions/<int:session_id>",
                  "GET /rq/requeue/<queue_name>", "POST /rq/job/<job_id>/delete"):
        assert route in checked, (route, checked)
    with app.app_context():
        assert sessions.get_session(victim).name == "Victim"  # nothing ran


def test_nothing_but_login_setup_static_and_health_is_reachable_anonymously(app):
    anonymous = app.test_client()
    seen = 0
    for rule, method in _routes(app):
        if rule.endpoint in PUBLIC:
            continue
        answer = anonymous.open(_url(app, rule), method=method, headers=JSON)
        to_login = answer.status_code == 302 and "/login" in answer.headers["Location"]
        assert answer.status_code == 401 or to_login, (
            f"{method} {rule.rule} ({rule.endpoint}) answered {answer.status_code} anonymously")
        seen += 1
    assert seen > 30


def test_only_a_valid_api_key_stands_in_for_the_token(app):
    script = api_client(app)
    made = script.post("/api/v1/sessions", json={"name": "From a script"})
    assert made.status_code == 201, made.data
    wrong = app.test_client().post("/api/v1/sessions", json={"name": "Forged"},
                                   headers={"X-Api-Key": "sk_not_a_key"})
    assert wrong.status_code == 401
    # A signed-in browser that sends a token of another session is refused too.
    person, other = sign_in(app), sign_in(app)
    from tests.csrf_client import csrf_token_of

    stolen = csrf_token_of(other)
    forged = person.post("/sessions", data={"name": "Forged"},
                         headers={**JSON, "X-CSRFToken": stolen})
    assert forged.status_code == 400 and forged.get_json()["error"]["code"] == "csrf_failed"
    sent = person.post("/sessions", data={"name": "Mine"}, headers=JSON)  # with its own token
    assert sent.status_code in (200, 201, 303), sent.data
    with app.app_context():
        names = set(db.session.scalars(db.select(ScanSession.name)))
    assert names == {"From a script", "Mine"}


def test_an_upload_form_carries_its_token_without_the_body_being_parsed_first(app):
    """The intake streams multipart bodies itself: the token comes from the header (htmx) or
    the address (a form without JavaScript), never from a field inside the body."""
    from tests.csrf_client import csrf_token_of
    from tests.uploads.helpers import multipart_body

    person = sign_in(app)
    token = csrf_token_of(person)
    body = multipart_body([("a.jpg", b"not really")], "b0undary", {"csrf_token": token})
    multipart = {**JSON, "Content-Type": "multipart/form-data; boundary=b0undary"}
    in_body_only = person.post("/upload", data=body, headers={**multipart, "X-CSRFToken": ""})
    assert in_body_only.status_code == 400
    assert in_body_only.get_json()["error"]["code"] == "csrf_failed"
    by_address = person.post(f"/upload?csrf_token={token}", data=body,
                             headers={**multipart, "X-CSRFToken": ""})
    by_header = person.post("/upload", data=body, headers={**multipart, "X-CSRFToken": token})
    for answer in (by_address, by_header):
        assert answer.status_code != 400 or answer.get_json()["error"]["code"] != "csrf_failed"
    # Over HTTPS the form must also come from this host, as Flask-WTF asks of other forms.
    secure = {**multipart, "X-CSRFToken": token, "Referer": "https://evil.example/"}
    foreign = person.post("/upload", data=body, headers=secure, base_url="https://localhost")
    assert foreign.status_code == 400 and foreign.get_json()["error"]["code"] == "csrf_failed"
    own = person.post("/upload", data=body, base_url="https://localhost",
                      headers={**secure, "Referer": "https://localhost/upload"})
    assert own.status_code != 400 or own.get_json()["error"]["code"] != "csrf_failed"
