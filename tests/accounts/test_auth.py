"""Who may use the station."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite"])
def database_url(request, tmp_path):
    return f"sqlite:///{tmp_path / 'data' / 'scanner.db'}"


def test_anonymous_api_request_is_401_with_error_body(app):
    response = app.test_client().get("/api/v1/sessions")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_wrong_api_key_is_401(app):
    response = app.test_client().get("/api/v1/sessions", headers={"X-Api-Key": "sk_nope"})
    assert response.status_code == 401


def test_api_key_is_accepted(client):
    assert client.get("/api/v1/sessions").status_code == 200


def test_anonymous_page_redirects_to_login(app):
    response = app.test_client().get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/setup") or "/login" in (
        response.headers["Location"])


def test_health_check_is_public(app):
    # Anonymous, and answered with its report (503 here: no Redis or worker runs in this
    # test, which tests/runtime/test_health.py covers), never a 401 or a login redirect.
    response = app.test_client().get("/healthz")
    assert response.status_code in (200, 503)
    assert response.get_json()["checks"]["database"]["status"] == "ok"


def test_first_visitor_creates_admin_then_logs_in(app):
    browser = app.test_client()
    assert browser.get("/login").headers["Location"].endswith("/setup")
    short = browser.post("/setup", data={"name": "ada", "password": "short"})
    assert short.status_code == 400 and b"at least 8 characters" in short.data
    assert browser.post("/setup", data={"name": "ada", "password": "correct horse"}
                        ).status_code == 302
    assert browser.get("/").status_code == 200
    browser.post("/logout")
    assert browser.get("/").status_code == 302
    # Setup is closed once a login exists.
    assert browser.get("/setup").headers["Location"].endswith("/login")
    bad = browser.post("/login", data={"name": "ada", "password": "wrong password"})
    assert bad.status_code == 401
    ok = browser.post("/login", data={"name": "ada", "password": "correct horse",
                                      "next": "//evil.example/"})
    assert ok.headers["Location"] == "/"


def test_health_check_says_so_when_the_database_is_unreachable(data_dir):
    from scanner_app import create_app
    from scanner_app.config import load_settings
    from tests.conftest import station_env

    missing = data_dir / "no-such-folder" / "scanner.db"
    app = create_app(load_settings(env=station_env(
        data_dir, SCANNER_DATABASE_URL=f"sqlite:///{missing}")))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "database_unreachable"


def test_api_key_use_is_recorded_but_not_on_every_request(app, client):
    from scanner_app.models import ApiKey
    from scanner_app.platform.extensions import db

    client.get("/api/v1/sessions")
    with app.app_context():
        first = db.session.scalars(db.select(ApiKey)).one().last_used_at
    assert first is not None
    client.get("/api/v1/sessions")
    with app.app_context():
        assert db.session.scalars(db.select(ApiKey)).one().last_used_at == first
