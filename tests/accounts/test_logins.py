"""Issue 9, finding 4: logins. Each test reproduces an attack from the report against a live
`scanner web` where it is about HTTP: guessing passwords, telling names apart by time,
bouncing a person to another site after login, reusing a cookie after logout, racing the
first-run page, reaching user management without being an admin, reading the password hashes
on disk."""

from __future__ import annotations

import os
import stat
import statistics
import threading
import time

import pytest
from sqlalchemy import select

from scanner_app.models import ApiKey, User
from scanner_app.platform.extensions import db
from tests.accounts.live import Browser, live_web
from tests.conftest import build_app
from tests.support import dispose, station_env

PASSWORD = "correct horse battery"


def add_user(app, name: str, admin: bool = False) -> None:
    from scanner_app.accounts.service import create_user

    with app.app_context():
        create_user(name, PASSWORD, is_admin=admin)


@pytest.fixture
def sqlite_only(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'data' / 'scanner.db'}"


def test_password_guessing_is_throttled_by_account_and_by_address(data_dir, sqlite_only):
    with live_web(data_dir, sqlite_only) as web:
        add_user(web.app, "ada")
        add_user(web.app, "bob")
        guesser = Browser(web.base)
        for attempt in range(5):
            assert guesser.sign_in("ada", f"wrong {attempt}").status_code == 401
        refused = guesser.sign_in("ada", "wrong again")
        assert refused.status_code == 429
        assert "Too many failed sign-ins" in refused.text and "Traceback" not in refused.text
        # The account stays closed for now, even to its right password...
        assert guesser.sign_in("ada", PASSWORD).status_code == 429
        # ...while another account from the same address is still asked for its password.
        assert guesser.sign_in("bob", "wrong").status_code == 401
        assert guesser.sign_in("bob", PASSWORD).status_code == 302  # success is not counted

        # By address: 20 failures a minute whatever the names (5 + 1 made above).
        answers = [guesser.sign_in(f"nobody{n}", "wrong").status_code for n in range(15)]
        assert answers == [401] * 14 + [429]


def test_unknown_names_cost_a_password_hash_like_known_ones(sqlite_app, monkeypatch):
    """No username oracle: an unknown name is checked against a dummy hash made the same way,
    so the answer takes as long (the report measured 100 ms against 2 ms)."""
    from werkzeug import security

    from scanner_app.accounts import service

    with sqlite_app.app_context():
        service.create_user("ada", PASSWORD)
        real = db.session.scalar(select(User.password_hash).where(User.name == "ada"))
        checked: list[str] = []

        def recording(stored: str, password: str) -> bool:
            checked.append(stored)
            return security.check_password_hash(stored, password)

        monkeypatch.setattr(service, "check_password_hash", recording)
        assert service.check_login("ada", "wrong password") is None
        assert service.check_login("nobody-here", "wrong password") is None
        assert service.check_login("not a valid name!", "wrong password") is None
        assert len(checked) == 3
        method = real.split("$", 1)[0]
        assert all(stored.split("$", 1)[0] == method for stored in checked), checked

        def seconds(name: str) -> float:
            start = time.perf_counter()
            service.check_login(name, "wrong password")
            return time.perf_counter() - start

        known = statistics.median(seconds("ada") for _ in range(5))
        unknown = statistics.median(seconds("nobody-here") for _ in range(5))
        assert unknown > known / 2, (known, unknown)


@pytest.mark.parametrize("hostile", [
    "/%09/evil.example", "/\t/evil.example", "//evil.example/", "/\\evil.example",
    "\\\\evil.example", "https://evil.example/", "/\n/evil.example", "http:/evil.example",
    "javascript:alert(1)", "/ /evil.example",
])
def test_next_is_a_local_path_only(sqlite_app, hostile):
    from urllib.parse import unquote

    add_user(sqlite_app, "ada")
    browser = sqlite_app.test_client()
    for target in {hostile, unquote(hostile)}:
        answer = browser.post("/login", data={"name": "ada", "password": PASSWORD,
                                              "next": target})
        assert answer.status_code == 302
        assert answer.headers["Location"] == "/", (target, answer.headers["Location"])
        browser.post("/logout")


def test_next_through_the_live_server(data_dir, sqlite_only):
    with live_web(data_dir, sqlite_only) as web:
        add_user(web.app, "ada")
        browser = Browser(web.base)
        # The query string of the report's request, decoded by the server as a browser sends it.
        token = browser.token()
        answer = browser.http.post(web.base + "/login?next=/%09/evil.example",
                                   data={"name": "ada", "password": PASSWORD,
                                         "csrf_token": token}, allow_redirects=False)
        assert answer.status_code == 302 and answer.headers["Location"] == "/"
        browser.post("/logout", {}, page="/")
        kept = browser.sign_in("ada", PASSWORD, next_path="/sessions?page=2")
        assert kept.headers["Location"] == "/sessions?page=2"


def test_a_copied_cookie_stops_working_after_logout(data_dir, sqlite_only):
    with live_web(data_dir, sqlite_only) as web:
        add_user(web.app, "ada")
        person = Browser(web.base)
        assert person.sign_in("ada", PASSWORD).status_code == 302
        thief = Browser(web.base)
        thief.http.cookies.update(person.http.cookies)
        assert thief.get("/").status_code == 200

        assert person.post("/logout", {}, page="/").status_code == 302
        assert person.get("/").status_code == 302
        stale = thief.get("/")
        assert stale.status_code == 302 and stale.headers["Location"].startswith("/login")
        api = thief.get("/api/v1/sessions")
        assert api.status_code == 401 and api.json()["error"]["code"] == "unauthorized"
        # Signing in again makes a new token: the old cookie stays dead.
        assert person.sign_in("ada", PASSWORD).status_code == 302
        assert thief.get("/").status_code == 302
        assert person.get("/").status_code == 200


def test_racing_first_run_requests_make_exactly_one_admin(data_dir, database_url):
    visitors = 12
    with live_web(data_dir, database_url, threads=visitors) as web:
        browsers = [Browser(web.base) for _ in range(visitors)]
        tokens = [browser.token("/setup") for browser in browsers]
        start = threading.Barrier(visitors)
        answers: list = [None] * visitors

        def visit(n: int) -> None:
            start.wait()
            answers[n] = browsers[n].post("/setup", {"name": f"admin{n}",
                                                     "password": PASSWORD}, token=tokens[n])

        threads = [threading.Thread(target=visit, args=(n,)) for n in range(visitors)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        with web.app.app_context():
            made = db.session.scalars(select(User)).all()
        assert len(made) == 1 and made[0].is_admin
        codes = sorted((a.status_code, a.headers.get("Location")) for a in answers)
        assert codes.count((302, "/")) == 1, codes  # the winner, signed in
        assert codes.count((302, "/login")) == visitors - 1, codes
        winner = browsers[int(made[0].name.removeprefix("admin"))]
        assert winner.get("/").status_code == 200


def test_first_run_is_decided_by_the_database_not_by_a_count(sqlite_app, monkeypatch):
    """The interleaving of the report, made certain: every request saw an empty station
    (its count ran before anyone committed); only one of them can still commit."""
    from scanner_app.accounts import service
    from scanner_app.platform.errors import Conflict

    monkeypatch.setattr(service, "user_count", lambda: 0)
    with sqlite_app.app_context():
        service.create_first_admin("first", PASSWORD)
        for name in ("second", "third"):
            with pytest.raises(Conflict, match="set up already"):
                service.create_first_admin(name, PASSWORD)
        assert db.session.scalars(select(User.name)).all() == ["first"]


def test_only_admins_manage_logins_and_keys(data_dir, sqlite_only):
    with live_web(data_dir, sqlite_only) as web:
        add_user(web.app, "ada", admin=True)
        add_user(web.app, "bob")
        with web.app.app_context():
            from scanner_app.accounts.service import create_api_key

            key = create_api_key("script")
        bob = Browser(web.base)
        assert bob.sign_in("bob", PASSWORD).status_code == 302
        page = bob.get("/admin")
        assert page.status_code == 403 and "Only an admin" in page.text
        token = bob.token("/")
        for path, form in (("/admin/keys", {"name": "sneaky"}),
                           ("/admin/users", {"name": "mallory", "password": PASSWORD,
                                             "is_admin": "1"})):
            assert bob.post(path, form, token=token).status_code == 403
        with web.app.app_context():
            assert db.session.scalars(select(ApiKey.name)).all() == ["script"]
            assert db.session.scalar(select(User).where(User.name == "mallory")) is None
        # A script's key is not a person, let alone an admin.
        answer = Browser(web.base).get("/admin", headers={"X-Api-Key": key})
        assert answer.status_code == 403
        ada = Browser(web.base)
        assert ada.sign_in("ada", PASSWORD).status_code == 302
        assert ada.get("/admin").status_code == 200


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_data_dir_secret_and_database_are_private(tmp_path):
    old_umask = os.umask(0o022)  # the usual umask, which made scanner.db world-readable
    try:
        data_dir = tmp_path / "fresh" / "data"
        app = build_app(data_dir)
        with app.app_context():
            from scanner_app.accounts.service import create_user

            create_user("ada", PASSWORD)  # a write: the WAL file exists now
            assert _mode(data_dir) == 0o700
            assert _mode(data_dir / "secret_key") == 0o600
            assert _mode(data_dir / "scanner.db") == 0o600
            assert _mode(data_dir / "scanner.db-wal") == 0o600
        dispose(app)

        # A station made by an earlier version: its files were world-readable.
        (data_dir / "scanner.db").chmod(0o644)
        (data_dir / "secret_key").chmod(0o644)
        from scanner_app import create_app
        from scanner_app.config import load_settings

        create_app(load_settings(env=station_env(data_dir)))
        assert _mode(data_dir / "scanner.db") == 0o600
        assert _mode(data_dir / "secret_key") == 0o600
    finally:
        os.umask(old_umask)
