"""/healthz reports every check (issue 10, finding 12): database, Redis, a live worker per queue,
free disk and the rig, 200 only when all pass, 503 naming the first that fails; and the banner
every signed-in page polls says when the worker or Redis is down (finding 2). Real Redis
(the station's private one), real RQ worker registrations, the real hardware lock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rq import Worker

from scanner_app.platform.hardware_lock import hardware_lock
from scanner_app.platform.queues import redis_connection
from scanner_app.station.health import queue_status
from tests.conftest import build_app
from tests.support import dispose
from tests.web.conftest import HX, sign_in


@pytest.fixture
def live_workers(sqlite_app, private_redis) -> Iterator[list[Worker]]:
    """RQ workers registered with a fresh heartbeat, as `scanner run` starts them."""
    connection = redis_connection(sqlite_app.config["SCANNER_SETTINGS"])
    workers = [Worker(["hardware"], connection=connection, name="health-hardware"),
               Worker(["uploads"], connection=connection, name="health-uploads")]
    for worker in workers:
        worker.register_birth()
        worker.heartbeat()
    yield workers
    for worker in workers:
        worker.register_death()


def test_healthz_is_200_with_every_check_when_all_is_well(sqlite_app, live_workers):
    answer = sqlite_app.test_client().get("/healthz")
    body = answer.get_json()
    assert answer.status_code == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis", "worker", "disk", "rig"}
    assert all(check["status"] == "ok" for check in body["checks"].values())
    # No processing worker: reconstruction may run on another computer, so not a failure.
    assert body["checks"]["worker"]["live"] == {"hardware": 1, "uploads": 1, "processing": 0}
    assert body["checks"]["disk"]["free_mb"] > 0
    assert body["checks"]["rig"] == {"status": "ok", "driver": "mock", "in_use": False}


def test_healthz_is_503_naming_redis_when_it_is_down(sqlite_app):
    answer = sqlite_app.test_client().get("/healthz")  # nobody started the private Redis
    body = answer.get_json()
    assert answer.status_code == 503
    assert body["checks"]["redis"]["status"] == "fail"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["error"]["code"] == "redis_unhealthy"
    assert body["error"]["message"].endswith(".")


def test_healthz_is_503_when_no_worker_runs_for_scans(sqlite_app, private_redis, live_workers):
    live_workers[0].register_death()  # the scan worker is gone; the uploads worker is not
    answer = sqlite_app.test_client().get("/healthz")
    body = answer.get_json()
    assert answer.status_code == 503
    assert body["error"]["code"] == "worker_unhealthy"
    assert body["checks"]["worker"]["live"] == {"hardware": 0, "uploads": 1, "processing": 0}
    assert "No scan worker is running" in body["checks"]["worker"]["message"]


def test_healthz_reports_a_full_disk_and_the_rig_in_use(data_dir, private_redis):
    app = build_app(data_dir, SCANNER_DISK_RESERVE_MB=str(1 << 40))  # more than any disk
    connection = redis_connection(app.config["SCANNER_SETTINGS"])
    workers = [Worker([q], connection=connection, name=f"w-{q}") for q in ("hardware", "uploads")]
    for worker in workers:
        worker.register_birth()
    try:
        with hardware_lock(data_dir):  # a scan (or `scanner hal check`) drives the rig
            answer = app.test_client().get("/healthz")
        body = answer.get_json()
        assert answer.status_code == 503
        assert body["error"]["code"] == "disk_unhealthy"
        assert "under the" in body["checks"]["disk"]["message"]
        assert body["checks"]["rig"]["in_use"] is True
        assert body["checks"]["rig"]["status"] == "ok"
    finally:
        for worker in workers:
            worker.register_death()
        dispose(app)


def test_signed_in_pages_poll_the_banner_which_says_when_redis_or_the_worker_is_down(
        sqlite_app, private_redis):
    browser = sign_in(sqlite_app)
    page = browser.get("/").get_data(as_text=True)
    assert 'id="station-status"' in page and 'hx-get="/station/status-banner"' in page
    assert "<script>" not in page.split('id="station-status"', 1)[1].split("</div>", 1)[0]

    # Redis answers but no worker has registered: the worker banner.
    banner = browser.get("/station/status-banner", headers=HX).get_data(as_text=True)
    assert "No scan worker is running" in banner and 'role="alert"' in banner

    settings = sqlite_app.config["SCANNER_SETTINGS"]
    private_redis.stop()
    assert queue_status(settings, max_age=0)["redis"]["status"] == "fail"
    banner = browser.get("/station/status-banner", headers=HX).get_data(as_text=True)
    assert "The job queue (Redis) is down" in banner

    private_redis.start()
    connection = redis_connection(settings)
    workers = [Worker([q], connection=connection, name=f"b-{q}") for q in ("hardware", "uploads")]
    for worker in workers:
        worker.register_birth()
    try:
        assert queue_status(settings, max_age=0)["worker"]["status"] == "ok"
        banner = browser.get("/station/status-banner", headers=HX).get_data(as_text=True)
        assert 'role="alert"' not in banner and 'id="station-status"' in banner
    finally:
        for worker in workers:
            worker.register_death()
    # Not for people: without htmx the address leads to the dashboard.
    assert browser.get("/station/status-banner").status_code == 302


def test_the_banner_status_is_cached_for_a_few_seconds(sqlite_app, private_redis):
    settings = sqlite_app.config["SCANNER_SETTINGS"]
    first = queue_status(settings, max_age=0)
    assert first["redis"]["status"] == "ok"
    private_redis.stop()
    assert queue_status(settings, max_age=60) is first  # no Redis round trip per page
    assert queue_status(settings, max_age=0)["redis"]["status"] == "fail"


def test_a_browser_gets_the_checks_as_a_page_and_scripts_keep_json(sqlite_app, live_workers):
    """The footer's "status" link opens a page in words, not raw JSON; monitors sending
    */* (curl, systemd) or asking for JSON still get JSON."""
    client = sqlite_app.test_client()
    page = client.get("/healthz", headers={
        "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"})
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "Station status" in html and "Everything the station needs is working." in html
    assert 'data-check="redis"' in html
    for accept in ("*/*", "application/json"):
        answer = client.get("/healthz", headers={"Accept": accept})
        assert answer.mimetype == "application/json" and answer.get_json()["status"] == "ok"
    assert client.get("/healthz").get_json()["status"] == "ok"  # no Accept at all
