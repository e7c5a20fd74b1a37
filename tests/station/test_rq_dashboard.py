"""The RQ dashboard at /rq/: login or key required, works in every app built in a process,
and the app starts (the dashboard shows its own error) when Redis is down."""

from __future__ import annotations

from pathlib import Path

from rq import Queue

from scanner_app.accounts import auth
from scanner_app.platform.queues import HARDWARE_QUEUE
from scanner_app.runtime.redis_server import PrivateRedis
from tests.conftest import build_app
from tests.support import api_client, dispose


def test_dashboard_needs_login_or_key_and_works_in_two_apps(tmp_path: Path):
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    first_dir.mkdir()
    second_dir.mkdir()
    with PrivateRedis(first_dir) as redis_a, PrivateRedis(second_dir):
        # A job in the first station's queue only: each app must show its own Redis.
        Queue(HARDWARE_QUEUE, connection=redis_a.client()).enqueue("builtins.print", "x")
        apps = [build_app(first_dir), build_app(second_dir)]
        try:
            for app, has_job in zip(apps, (True, False), strict=True):
                anonymous = app.test_client()
                page = anonymous.get("/rq/")
                assert page.status_code == 302
                assert "/login" in page.headers["Location"]
                assert anonymous.get("/rq/0/data/queues.json").status_code == 302
                static = anonymous.get("/rq/static/css/main.css")
                assert static.status_code in (302, 401)
                bad = anonymous.get("/rq/", headers={"X-Api-Key": "sk_wrong"})
                assert bad.status_code == 401

                client = api_client(app)
                page = client.get("/rq/")
                assert page.status_code == 200
                assert b"Connection Error" not in page.data
                queues = client.get("/rq/0/data/queues.json")
                assert queues.status_code == 200
                names = {q["name"]: q["count"] for q in queues.get_json()["queues"]}
                assert (names.get(HARDWARE_QUEUE) == 1) is has_job
        finally:
            for app in apps:
                dispose(app)


def test_app_starts_and_dashboard_reports_when_redis_is_down(data_dir: Path):
    app = build_app(data_dir)  # nobody started the private Redis
    try:
        client = api_client(app)
        health = client.get("/healthz")  # the station answers, and says what is missing
        assert health.status_code == 503
        assert health.get_json()["checks"]["database"]["status"] == "ok"
        assert health.get_json()["checks"]["redis"]["status"] == "fail"
        page = client.get("/rq/")
        assert page.status_code == 200
        assert b"Connection Error" in page.data
    finally:
        dispose(app)


def test_dashboard_stays_private_even_if_the_login_check_let_it_through(data_dir, monkeypatch):
    """The app-level guard on request.blueprint is a second lock behind accounts.auth."""
    monkeypatch.setattr(auth, "PUBLIC_ENDPOINTS",
                        auth.PUBLIC_ENDPOINTS | {"rq_dashboard.queues_overview"})
    app = build_app(data_dir)
    try:
        response = app.test_client().get("/rq/", headers={"Accept": "application/json"})
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthorized"
    finally:
        dispose(app)


def test_a_browser_login_opens_the_dashboard(data_dir: Path, private_redis):
    from scanner_app.accounts.service import create_user

    app = build_app(data_dir)
    try:
        with app.app_context():
            create_user("maker", "a long enough password")
        browser = app.test_client()
        assert browser.get("/rq/").status_code == 302
        signed_in = browser.post("/login", data={"name": "maker",
                                                 "password": "a long enough password"})
        assert signed_in.status_code == 302
        page = browser.get("/rq/")
        assert page.status_code == 200
        assert b"Connection Error" not in page.data and b"/rq/static/" in page.data
    finally:
        dispose(app)


def test_dashboard_url_points_at_the_private_socket_or_the_configured_redis(data_dir: Path):
    from scanner_app.config import load_settings
    from scanner_app.station.rq_dashboard import dashboard_redis_url
    from tests.conftest import station_env

    private = load_settings(env=station_env(data_dir))
    assert dashboard_redis_url(private).startswith(f"unix://{data_dir.resolve()}/redis.sock?")
    configured = load_settings(env=station_env(data_dir,
                                               SCANNER_REDIS_URL="redis://127.0.0.1:6390/2"))
    assert dashboard_redis_url(configured).startswith("redis://127.0.0.1:6390/2?")
