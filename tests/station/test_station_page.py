"""The station page (/station, issue 14): the rig from its position file and last known
state, calibration, the health checks, the Pi's CPU temperature and throttling (read from
files and `vcgencmd` whose places the tests point elsewhere; "not available" off a Pi),
versions, and the links on (controls, logins and keys for admins, the job queues)."""

from __future__ import annotations

import html
import platform
import re
import stat
from collections.abc import Iterator
from importlib import metadata

import pytest
from werkzeug.security import generate_password_hash

from hal.position import PositionStore, RigPosition
from scanner_app.models import User
from scanner_app.platform.extensions import db
from scanner_app.station import station_page_info as info
from tests.conftest import build_app
from tests.support import dispose, free_port
from tests.web.conftest import PASSWORD, sign_in

REDIS_DB = 2  # a database of the shared test Redis for these tests alone, flushed per test


@pytest.fixture
def redis_url(redis_server) -> Iterator[str]:
    import redis

    url = redis_server.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    connection = redis.Redis.from_url(url)
    connection.flushdb()
    yield url
    connection.flushdb()
    connection.close()


@pytest.fixture
def station(data_dir, redis_url) -> Iterator:
    app = build_app(data_dir, SCANNER_REDIS_URL=redis_url)
    yield app
    dispose(app)


@pytest.fixture
def off_pi(monkeypatch, tmp_path):
    """This machine as it is: no thermal zone file, no vcgencmd (pointed at absent ones)."""
    monkeypatch.setattr(info, "THERMAL_ZONE", tmp_path / "no-thermal-zone")
    monkeypatch.setattr(info, "VCGENCMD", str(tmp_path / "no-vcgencmd"))


def _text(answer) -> str:
    assert answer.status_code == 200, answer.data[:500]
    return html.unescape(answer.get_data(as_text=True))


def _field(page: str, attribute: str) -> str:
    match = re.search(rf"<div [^>]*?\b{attribute}\b[^>]*>(.*?)</div>", page, re.S)
    assert match, attribute
    return " ".join(re.sub(r"<[^>]+>", " ", match[1]).split())


def test_off_a_pi_temperature_and_throttling_are_not_available(station, off_pi):
    page = _text(sign_in(station).get("/station"))
    assert _field(page, "data-cpu-temperature") == "not available"
    assert _field(page, "data-throttling") == "not available"


def test_on_a_pi_the_temperature_and_throttling_are_shown(station, monkeypatch, tmp_path):
    zone = tmp_path / "temp"
    zone.write_text("52345\n")
    vcgencmd = tmp_path / "vcgencmd"
    vcgencmd.write_text('#!/bin/sh\n[ "$1" = get_throttled ] && echo "throttled=0x50005"\n')
    vcgencmd.chmod(vcgencmd.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(info, "THERMAL_ZONE", zone)
    monkeypatch.setattr(info, "VCGENCMD", str(vcgencmd))
    page = _text(sign_in(station).get("/station"))
    assert _field(page, "data-cpu-temperature") == "52.3 °C"
    throttled = _field(page, "data-throttling")
    assert throttled.startswith("Throttled now: under-voltage now; throttled now;")
    assert "under-voltage has occurred since boot" in throttled and "(0x50005)" in throttled


@pytest.mark.parametrize(("output", "now", "starts"), [
    ("throttled=0x0\n", False, "Not throttled"),
    ("throttled=0x50000\n", False, "Fine now, but since boot: under-voltage has occurred"),
    ("throttled=0x8\n", True, "Throttled now: soft temperature limit reached now"),
])
def test_throttle_bits_read_as_sentences(output, now, starts):
    parsed = info.parse_throttled(output)
    assert parsed["now"] is now and parsed["text"].startswith(starts)
    assert parsed["text"].endswith(".")
    assert info.parse_throttled("error: no VCHI\n") is None


def test_a_failing_vcgencmd_reads_not_available(monkeypatch, tmp_path):
    broken = tmp_path / "vcgencmd"
    broken.write_text("#!/bin/sh\necho 'VCHI initialization failed' >&2\nexit 255\n")
    broken.chmod(broken.stat().st_mode | stat.S_IEXEC)
    assert info.throttling(str(broken))["text"] == "not available"


def test_the_rig_position_file_and_versions(station, off_pi):
    settings = station.config["SCANNER_SETTINGS"]
    PositionStore(settings.hal.position_file).save(
        RigPosition(steps=14400, steps_per_rev=57600, zero="hand"))
    page = _text(sign_in(station).get("/station"))
    assert _field(page, "data-rig-state").startswith("90.0° according to the position file")
    assert _field(page, "data-zero") == "set by hand"
    assert "data-move-interrupted" not in page
    assert _field(page, "data-driver") == "Simulated (mock)"
    versions = dict(re.findall(r'data-version="([^"]+)">([^<]*)<', page))
    assert versions["Python"] == platform.python_version()
    assert versions["Flask"] == metadata.version("Flask")
    assert "kernel" in versions["Operating system"]

    PositionStore(settings.hal.position_file).save(
        RigPosition(steps=14400, steps_per_rev=57600, moving_to=28800))
    page = _text(sign_in(station).get("/station"))
    assert "Cut off (power cut or killed job)" in _field(page, "data-move-interrupted")


def test_health_without_a_worker_and_the_links(station, off_pi):
    admin_page = _text(sign_in(station).get("/station"))
    worker = re.search(r'<li class="row-item" data-check="worker" data-status="(\w+)">(.*?)</li>',
                       admin_page, re.S)
    assert worker[1] == "fail" and "No scan worker is running" in worker[2]
    assert re.search(r'data-check="redis" data-status="ok"', admin_page)
    assert 'href="/rig"' in admin_page and "Controls & preview" in admin_page
    assert 'href="/rq/"' in admin_page
    assert 'href="/admin"' in admin_page and 'href="/settings"' in admin_page
    assert _field(admin_page, "data-rig-state").startswith("Not known yet: no job has moved")

    with station.app_context():
        db.session.add(User(name="viewer", is_admin=False, password_hash=generate_password_hash(
            PASSWORD, method="pbkdf2:sha256:1000")))
        db.session.commit()
    viewer = station.test_client()
    viewer.post("/login", data={"name": "viewer", "password": PASSWORD})
    page = _text(viewer.get("/station"))
    assert 'data-section="manage"' not in page and 'href="/admin"' not in page
    assert 'href="/rq/"' in page


def test_the_page_answers_with_redis_down(data_dir, off_pi):
    app = build_app(data_dir, SCANNER_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    try:
        page = _text(sign_in(app).get("/station"))
        assert re.search(r'data-check="redis" data-status="fail"', page)
        assert "The job queue (Redis) does not answer" in page
    finally:
        dispose(app)


def test_the_rig_as_the_last_job_left_it(station, redis_url, off_pi):
    import redis

    from scanner_app.rig import channel

    channel.publish_state(redis.Redis.from_url(redis_url), {
        "driver": "mock", "angle_deg": 90.0, "position_known": False,
        "position_note": "The position is assumed: there is no home switch.",
        "light_on": True, "motor_enabled": False,
        "tilt": {"elevation_deg": 30.0, "min_elevation_deg": 0.0, "max_elevation_deg": 60.0},
        "updated_at": "2026-11-30T20:00:00Z"})
    state = _field(_text(sign_in(station).get("/station")), "data-rig-state")
    assert state.startswith("90.0° (position not certain: The position is assumed")
    assert "light on, camera at 30.0°" in state and "(as of 2026-11-30T20:00:00Z)" in state


@pytest.mark.parametrize("on_demand", [True, False])
def test_an_idle_on_demand_processing_worker_reads_as_starting_when_a_model_is_queued(
        station, redis_url, off_pi, monkeypatch, on_demand):
    """Under `scanner run` (which sets the variable) no processing worker is the idle state."""
    import redis
    from rq import Worker

    from scanner_app.station.health import PROCESSING_ON_DEMAND_ENV

    if on_demand:
        monkeypatch.setenv(PROCESSING_ON_DEMAND_ENV, "1")
    else:
        monkeypatch.delenv(PROCESSING_ON_DEMAND_ENV, raising=False)
    connection = redis.Redis.from_url(redis_url)
    workers = [Worker([queue], connection=connection, name=f"page-{queue}")
               for queue in ("hardware", "uploads")]
    for worker in workers:
        worker.register_birth()
        worker.heartbeat()
    try:
        page = _text(sign_in(station).get("/station"))
    finally:
        for worker in workers:
            worker.register_death()
        connection.close()
    worker_row = re.search(r'data-check="worker" data-status="(\w+)">(.*?)</li>', page, re.S)
    assert worker_row[1] == "ok"
    said = "the processing worker starts when a model is queued" in worker_row[2]
    assert said is on_demand
    assert "0 processing worker(s) running" in worker_row[2]
