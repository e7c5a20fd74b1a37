"""The whole dashboard page is kept per (station, day, person) under the stamp (issue 15): a
repeat builds nothing; every token in a page is its asker's own, never another person's;
an admin's page and another's differ as they should; a running scan's page is never kept.
A request with an X-Api-Key gets no cookie session: nothing signed, no cookie sent, and a
login cookie sent along is not looked at. SQLite and PostgreSQL."""

from __future__ import annotations

import re

from sqlalchemy import update

from scanner_app.models import Scan, User
from scanner_app.platform.clock import utcnow
from scanner_app.platform.extensions import db
from scanner_app.platform.web.kept_html import CSRF_MARK
from scanner_app.sessions import service as session_service
from scanner_app.station.dashboard import PAGES
from tests.web.conftest import PASSWORD, sign_in

TOKEN = re.compile(r'(?:name="csrf_token" value="|name="csrf-token" content="|'
                   r'"X-CSRFToken": ")([^"]+)"')


def _page(client) -> str:
    answer = client.get("/", headers={"Accept": "text/html"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    page = answer.get_data(as_text=True)
    assert CSRF_MARK not in page
    return page


def _tokens(page: str) -> set[str]:
    found = TOKEN.findall(page)
    assert len(found) >= 3, page  # the meta tag, htmx's header, the forms
    return set(found)


def test_the_page_is_kept_and_each_person_gets_only_their_own_token(app, client):
    with app.app_context():
        session_service.create_manual_session("Alpha", make_current=False)
    ann = sign_in(app, "ann")
    with app.app_context():  # bob is no admin
        sign_in(app, "bob")
        db.session.execute(update(User).where(User.name == "bob").values(is_admin=False))
        db.session.commit()
    bob = app.test_client()
    assert bob.post("/login", data={"name": "bob", "password": PASSWORD}
                    ).status_code == 302
    ann_page = _page(ann)
    builds = PAGES.builds
    assert _page(ann) == ann_page  # the same page, the same token (her cookie's)
    assert PAGES.builds == builds  # kept
    bob_page = _page(bob)
    (ann_token,), (bob_token,) = _tokens(ann_page), _tokens(bob_page)
    assert ann_token != bob_token
    assert ann_token not in bob_page and bob_token not in ann_page
    assert "Logins and keys" in ann_page and "Logins and keys" not in bob_page
    assert PAGES.builds == builds + 1  # bob's page is his own
    # Someone new, signed in while ann's page is kept, gets their own token too.
    cyd_page = _page(sign_in(app, "cyd"))
    assert _tokens(cyd_page).isdisjoint({ann_token, bob_token})


def test_a_page_with_a_running_scan_is_never_kept(app, client):
    with app.app_context():
        session = session_service.create_manual_session("Trial", make_current=True)
        now = utcnow()
        scan = Scan(session_id=session.id, status="running", profile="quick", source="api",
                    frames_planned=10, frames_captured=2, heartbeat_at=now, started_at=now)
        db.session.add(scan)
        db.session.commit()
        scan_id = scan.id
    assert "2 / 10" in _page(client)
    with app.app_context(), db.engine.begin() as conn:  # as the heartbeat is: no new stamp
        conn.execute(update(Scan).where(Scan.id == scan_id)
                     .values(frames_captured=3, heartbeat_at=utcnow()))
    assert "3 / 10" in _page(client)


def test_a_request_with_an_api_key_has_no_cookie_session(app, client, api_key):
    answer = client.get("/", headers={"Accept": "text/html"})
    assert answer.status_code == 200
    assert "Set-Cookie" not in answer.headers  # its forms' token was signed into nothing
    assert "Sign out" not in answer.get_data(as_text=True)  # a key is not a person
    # A browser's login cookie sent along with a key: the key decides, the cookie is unread.
    browser = sign_in(app, "ann")
    cookie = browser.get_cookie("session")
    assert cookie is not None
    with_both = app.test_client()
    with_both.set_cookie("session", cookie.value)
    answer = with_both.get("/", headers={"Accept": "text/html", "X-Api-Key": api_key})
    assert answer.status_code == 200 and "Set-Cookie" not in answer.headers
    assert "Sign out" not in answer.get_data(as_text=True)
    assert with_both.get("/", headers={"Accept": "text/html", "X-Api-Key": "sk_wrong"}
                         ).status_code == 401
    assert "Sign out" in _page(with_both)  # the same cookie, without a key: ann's page
