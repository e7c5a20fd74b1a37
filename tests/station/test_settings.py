"""Scan profiles on the settings page and the profiles API (issue 14): stored in the database
over config/scanner.toml's defaults, checked with the scan's own rules, admin-only, and
copied into each scan so editing a profile never changes a scan already started."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from werkzeug.security import generate_password_hash

from scanner_app.models import ProfileRow, Scan, User
from scanner_app.platform.extensions import db
from scanner_app.scans import service as scans
from tests.conftest import build_app
from tests.support import dispose
from tests.web.conftest import HX, PASSWORD, sign_in

QUICK = {"frames": 20, "settle_seconds": 0.25, "resolution": [640, 480], "jpeg_quality": 80}


REDIS_DB = 1  # a database of the shared test Redis for these tests alone, flushed per test


@pytest.fixture
def station(data_dir, database_url, redis_server) -> Iterator:
    """A station on SQLite and PostgreSQL with a real Redis, so scans can be queued (no
    worker takes them)."""
    import redis

    url = redis_server.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    connection = redis.Redis.from_url(url)
    connection.flushdb()
    app = build_app(data_dir, database_url, SCANNER_REDIS_URL=url)
    yield app
    dispose(app)
    connection.flushdb()
    connection.close()


@pytest.fixture
def api(station):
    from tests.support import api_client

    return api_client(station, "settings-tests")


def _sign_in_user(app, name: str = "viewer"):
    with app.app_context():
        db.session.add(User(name=name, is_admin=False, password_hash=generate_password_hash(
            PASSWORD, method="pbkdf2:sha256:1000")))
        db.session.commit()
    client = app.test_client()
    assert client.post("/login", data={"name": name, "password": PASSWORD}).status_code == 302
    return client


def test_a_saved_profile_overrides_the_files_and_reset_brings_it_back(station, api):
    listed = api.get("/api/v1/profiles").get_json()
    names = [p["name"] for p in listed["profiles"]]
    assert {"quick", "standard", "detailed"} <= set(names)
    assert listed["default_profile"] == "standard"
    quick = api.get("/api/v1/profiles/quick").get_json()["profile"]
    assert quick["frames"] == 12 and quick["in_config"] and not quick["customised"]

    answer = api.put("/api/v1/profiles/quick", json={**QUICK, "auto_reconstruct": True})
    assert answer.status_code == 200, answer.get_json()
    saved = answer.get_json()["profile"]
    assert saved["frames"] == 20 and saved["resolution"] == [640, 480]
    assert saved["customised"] and saved["auto_reconstruct"]
    with station.app_context():
        assert scans.profile_for("quick").frames == 20
        assert db.session.get(ProfileRow, "quick").width == 640

    answer = api.delete("/api/v1/profiles/quick")
    assert answer.status_code == 200
    assert answer.get_json()["profile"]["frames"] == 12
    assert not answer.get_json()["profile"]["customised"]
    again = api.delete("/api/v1/profiles/quick")
    assert again.status_code == 404
    assert "already as config/scanner.toml defines it" in again.get_json()["error"]["message"]


def test_a_new_profile_is_added_chosen_as_default_and_deleted(station, api):
    rings = [{"elevation_deg": 10, "frames": 8}, {"elevation_deg": 40, "frames": 6}]
    answer = api.put("/api/v1/profiles/small-things", json={**QUICK, "rings": rings})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["profile"]["rings"] == [
        {"elevation_deg": 10.0, "frames": 8}, {"elevation_deg": 40.0, "frames": 6}]
    assert not answer.get_json()["profile"]["in_config"]
    assert answer.get_json()["profile"]["frames_per_scan"] == 14
    photogrammetry = api.get("/api/v1/profiles/photogrammetry").get_json()["profile"]
    assert photogrammetry["frames_per_scan"] == 72  # 36 + 24 + 12, not its `frames`

    chosen = api.put("/api/v1/profiles/default", json={"name": "small-things"})
    assert chosen.status_code == 200 and chosen.get_json()["default_profile"] == "small-things"
    scan = api.post("/api/v1/scans", json={}).get_json()["scan"]  # names no profile
    assert scan["profile"] == "small-things" and scan["frames_planned"] == 14
    api.post(f"/api/v1/scans/{scan['id']}/cancel")

    assert api.delete("/api/v1/profiles/small-things").status_code == 204
    assert api.get("/api/v1/profiles/small-things").status_code == 404
    # The chosen default is gone: the files' default is in effect again.
    assert api.get("/api/v1/profiles").get_json()["default_profile"] == "standard"


@pytest.mark.parametrize(("body", "says"), [
    ({**QUICK, "rings": [{"elevation_deg": 85, "frames": 10}]},
     "this rig's camera tilts from 0° to 60°"),
    ({**QUICK, "frames": 721}, "Frames must be a whole number from 1 to 720"),
    ({**QUICK, "rings": [{"elevation_deg": 10, "frames": 400}] * 2},
     "a scan takes at most 720"),
    ({**QUICK, "frames": True}, "Frames must be a whole number"),
    ({**QUICK, "settle_seconds": -1}, "Settle time must be a number of seconds from 0 to 60"),
    ({**QUICK, "resolution": [640]}, "Resolution must be [width, height]"),
    ({**QUICK, "jpeg_quality": 101}, "JPEG quality must be a whole number from 1 to 100"),
    ({**QUICK, "auto_reconstruct": "yes"}, "Auto-reconstruct must be true or false"),
    ({**QUICK, "colour": "red"}, "A profile has no field 'colour'"),
    ({**QUICK, "rings": [{"elevation_deg": 10}]}, "each ring takes exactly"),
    ({**QUICK, "name": "slow"}, "The body names the profile 'slow' but the address names"),
])
def test_invalid_profiles_are_refused_with_a_sentence(station, api, body, says):
    answer = api.put("/api/v1/profiles/quick", json=body)
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert says in error["message"], error
    assert error["message"].endswith(".")
    with station.app_context():
        assert db.session.get(ProfileRow, "quick") is None  # nothing was stored


@pytest.mark.parametrize("name", [" spaced", "a/b", "x" * 61, "-dash", "ünï"])
def test_bad_profile_names_are_refused(station, api, name):
    answer = api.put(f"/api/v1/profiles/{name}", json=QUICK)
    assert answer.status_code in (400, 404)  # a '/' never reaches the view
    if answer.status_code == 400:
        assert "A profile name is 1 to 60" in answer.get_json()["error"]["message"]


def test_default_is_no_profile_name(station):
    # PUT /api/v1/profiles/default chooses the default profile, so no profile has that name.
    answer = sign_in(station).post("/settings/profiles", headers=HX, data={
        "name": "Default", "frames": "24", "settle_seconds": "0.4", "width": "1280",
        "height": "960", "jpeg_quality": "88"})
    assert answer.status_code == 400
    assert "other than 'default'" in html.unescape(answer.get_data(as_text=True))


def test_a_scan_keeps_the_profile_it_started_with(station, api):
    api.put("/api/v1/profiles/quick", json={**QUICK, "settle_seconds": 0.5})
    scan = api.post("/api/v1/scans", json={"profile": "quick"}).get_json()["scan"]
    assert scan["frames_planned"] == 20
    # Edited (and then reset) while the scan waits: the scan keeps what it started with.
    api.put("/api/v1/profiles/quick", json={**QUICK, "frames": 5, "settle_seconds": 3.0,
                                            "resolution": [320, 240]})
    with station.app_context():
        row = db.session.get(Scan, scan["id"])
        kept = scans.job_profile(row, station.config["SCANNER_SETTINGS"])
        assert (kept.frames, kept.settle_seconds, kept.resolution) == (20, 0.5, (640, 480))
        assert scans.profile_for("quick").frames == 5
    api.delete("/api/v1/profiles/quick")
    with station.app_context():
        row = db.session.get(Scan, scan["id"])
        kept = scans.job_profile(row, station.config["SCANNER_SETTINGS"])
        assert kept.settle_seconds == 0.5 and kept.resolution == (640, 480)
        # A scan from before snapshots reads the profile by name, as before.
        row.profile_snapshot = None
        assert scans.job_profile(row, station.config["SCANNER_SETTINGS"]).frames == 12
        db.session.rollback()
    api.post(f"/api/v1/scans/{scan['id']}/cancel")


def test_the_settings_page_edits_a_profile_through_htmx(station):
    browser = sign_in(station)
    page = browser.get("/settings")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-profile="photogrammetry"' in html and "10 36\n30 24\n50 12" in html

    form = {"frames": "24", "settle_seconds": "0.4", "width": "1280", "height": "960",
            "jpeg_quality": "88", "rings": "15 12\n45, 8\n", "auto_reconstruct": "1"}
    answer = browser.post("/settings/profiles/quick", data=form, headers=HX)
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert html.lstrip().startswith("<section id=\"profiles\"") and "data-saved" in html
    with station.app_context():
        quick = scans.profile_for("quick")
    assert quick.rings == ((15.0, 12), (45.0, 8)) and quick.auto_reconstruct
    assert not quick.turn_over and quick.jpeg_quality == 88

    bad = browser.post("/settings/profiles/quick", data={**form, "rings": "15 degrees"},
                       headers=HX)
    assert bad.status_code == 400
    assert "write one ring per line" in bad.get_data(as_text=True)
    typo = browser.post("/settings/profiles/quick", data={**form, "frames": "many"},
                        headers=HX)
    assert typo.status_code == 400 and "Frames must be a whole number" in typo.get_data(
        as_text=True)

    made = browser.post("/settings/profiles", data={**form, "name": "turntable-only",
                                                     "rings": ""}, headers=HX)
    assert made.status_code == 200 and 'data-profile="turntable-only"' in made.get_data(
        as_text=True)
    twice = browser.post("/settings/profiles", data={**form, "name": "turntable-only"},
                         headers=HX)
    assert twice.status_code == 400 and "exists already" in twice.get_data(as_text=True)

    chosen = browser.post("/settings/default", data={"name": "turntable-only"}, headers=HX)
    assert chosen.status_code == 200
    with station.app_context():
        assert scans.default_profile_name() == "turntable-only"

    reset = browser.post("/settings/profiles/quick/reset", headers=HX)
    assert reset.status_code == 200
    with station.app_context():
        assert scans.profile_for("quick").frames == 12
    # Without htmx (no JavaScript) a form post is redirected back to the page.
    plain = browser.post("/settings/profiles/quick", data=form)
    assert plain.status_code == 303 and plain.headers["Location"].endswith("/settings")


def test_only_admins_change_profiles(station):
    viewer = _sign_in_user(station)
    page = viewer.get("/settings").get_data(as_text=True)
    assert "Only an admin can change scan profiles" in page
    assert "Make default" not in page and ">Save<" not in page
    refused = viewer.post("/settings/profiles/quick", headers=HX, data={
        "frames": "24", "settle_seconds": "0.4", "width": "1280", "height": "960",
        "jpeg_quality": "88"})
    assert refused.status_code == 403
    assert "Only an admin can change scan profiles" in refused.get_data(as_text=True)
    api_refused = viewer.put("/api/v1/profiles/quick", json=QUICK)
    assert api_refused.status_code == 403
    assert api_refused.get_json()["error"]["code"] == "forbidden"
    assert viewer.delete("/api/v1/profiles/quick").status_code == 403
    assert viewer.get("/api/v1/profiles").status_code == 200  # reading is for everyone
    with station.app_context():
        assert db.session.get(ProfileRow, "quick") is None


def test_the_dashboard_and_station_api_offer_the_settings_pages_profiles(station, api):
    api.put("/api/v1/profiles/small-things", json=QUICK)
    api.put("/api/v1/profiles/default", json={"name": "small-things"})
    info = api.get("/api/v1/station").get_json()
    assert "small-things" in info["profiles"] and info["default_profile"] == "small-things"
    form = sign_in(station).get("/").get_data(as_text=True)
    assert re.search(r'<option value="small-things"\s+selected', form), form[:2000]


def test_two_requests_creating_one_profile_at_once_both_succeed(station, monkeypatch):
    """The row another request inserts between this one's look-up and its commit: this
    one's insert fails on the key and it updates that row instead (the later write wins)."""
    import sqlalchemy as sa

    real_get = db.session.get
    raced: list[str] = []

    def get_after_a_rival_inserted(model, key, *args, **kwargs):
        if model is ProfileRow and not raced:
            raced.append(key)
            with db.engine.begin() as rival:  # another connection: another request
                rival.execute(sa.insert(ProfileRow).values(
                    name=key, frames=99, settle_seconds=1.0, width=64, height=48,
                    jpeg_quality=50, rings="[]", turn_over=False, auto_reconstruct=False,
                    updated_at=sa.func.current_timestamp()))
            return None
        return real_get(model, key, *args, **kwargs)

    with station.app_context():
        monkeypatch.setattr(db.session, "get", get_after_a_rival_inserted)
        saved = scans.save_profile("racy", QUICK)
        monkeypatch.undo()
        assert raced == ["racy"] and saved.frames == 20
        db.session.expire_all()
        assert db.session.get(ProfileRow, "racy").frames == 20


def test_the_doctor_sizes_a_scan_of_the_chosen_default_profile(station, api, monkeypatch):
    from scanner_app.platform import disk
    from scanner_app.station import doctor as doctor_service

    monkeypatch.setattr(disk, "free_bytes", lambda _path: 2000 * 1024 * 1024)

    def space_finding() -> tuple[str, str]:
        with station.app_context():
            report = doctor_service.run_doctor()
        [finding] = [f for f in report.findings if "free in" in f.message]
        return finding.severity, finding.message

    assert space_finding()[0] == "ok"  # a 'standard' scan fits
    api.put("/api/v1/profiles/huge", json={**QUICK, "frames": 720,
                                            "resolution": [8000, 6000], "jpeg_quality": 100})
    api.put("/api/v1/profiles/default", json={"name": "huge"})
    severity, message = space_finding()
    assert severity == "warning" and "not enough for another 'huge' scan" in message
