"""The dashboard's current-session card is kept per process under the sessions-changed stamp
(issue 15): a repeated dashboard builds it once; choosing another current session, renaming
it or going back to today's session, here or in another process, shows in the very next
request; each person's page carries its own CSRF token. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import textwrap

from scanner_app.platform.web.kept_html import CSRF_MARK
from scanner_app.station.dashboard import CURRENT_CARDS, START_FORMS
from tests.support import process_env
from tests.web.conftest import sign_in

CARD = re.compile(r'<section id="current-session".*?</section>', re.S)
TOKENS = re.compile(r'name="csrf_token" value="([^"]*)"')


def _card(client) -> str:
    answer = client.get("/", headers={"Accept": "text/html"})
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    assert CSRF_MARK not in page
    found = CARD.search(page)
    assert found, page
    # A key's request keeps no session, so each answer has a new token: compare without it.
    return TOKENS.sub('name="csrf_token" value="-"', found.group(0))


def _create(client, name: str, make_current: bool) -> int:
    answer = client.post("/api/v1/sessions", json={"name": name, "make_current": make_current})
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.get_json()["session"]["id"]


def test_the_card_is_built_once_while_nothing_changes(client):
    _create(client, "Alpha", make_current=True)
    first = _card(client)
    assert "Alpha" in first
    builds = CURRENT_CARDS.builds
    for _ in range(3):
        assert _card(client) == first
    assert CURRENT_CARDS.builds == builds


def test_every_change_shows_in_the_next_dashboard(client):
    assert "Chosen session" not in _card(client)
    alpha = _create(client, "Alpha", make_current=True)
    card = _card(client)
    assert "Chosen session" in card and "Alpha" in card
    beta = _create(client, "Beta", make_current=False)
    assert "Beta" in _card(client)  # in the picker
    assert client.patch(f"/api/v1/sessions/{alpha}", json={"name": "Gamma"}).status_code == 200
    card = _card(client)
    assert "Gamma" in card and "Alpha" not in card
    assert client.put("/api/v1/sessions/current", json={"session_id": None}).status_code == 200
    assert "Chosen session" not in _card(client)
    assert client.put("/api/v1/sessions/current", json={"session_id": alpha}).status_code == 200
    assert "Chosen session" in _card(client)
    # Completing the chosen session sends new work back to today's session.
    assert client.patch(f"/api/v1/sessions/{alpha}",
                        json={"status": "completed"}).status_code == 200
    assert "Chosen session" not in _card(client)
    assert client.delete(f"/api/v1/sessions/{beta}").status_code == 204
    assert "Beta" not in _card(client)


def test_a_change_made_by_another_process_shows_in_the_next_dashboard(client, data_dir,
                                                                       database_url):
    _create(client, "Alpha", make_current=True)
    beta = _create(client, "Beta", make_current=False)
    assert "Chosen session" in _card(client)
    builds = CURRENT_CARDS.builds
    assert re.search(r'class="current-name">\s*<a [^>]*>Alpha<', _card(client))
    assert CURRENT_CARDS.builds == builds  # the next dashboard would come from the cache
    script = textwrap.dedent(f"""
        from scanner_app import create_app
        from scanner_app.config import load_settings
        from scanner_app.sessions import service
        app = create_app(load_settings())
        with app.app_context():
            service.set_current_session({beta})
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120,
                          env=process_env(data_dir, SCANNER_DATABASE_URL=database_url))
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r'class="current-name">\s*<a [^>]*>Beta<', _card(client))


def test_a_new_day_builds_the_card_again(client, monkeypatch):
    _card(client)
    builds = CURRENT_CARDS.builds
    _card(client)
    assert CURRENT_CARDS.builds == builds
    monkeypatch.setattr("scanner_app.sessions.service.station_today",
                        lambda: dt.date(2100, 1, 2))
    _card(client)
    assert CURRENT_CARDS.builds == builds + 1


def test_each_person_gets_their_own_csrf_token_in_the_kept_card(app, client):
    _create(client, "Alpha", make_current=False)  # the picker (and its form) shows
    tokens = []
    for name in ("ann", "bob"):
        browser = sign_in(app, name)
        page = browser.get("/").get_data(as_text=True)
        card_tokens = set(TOKENS.findall(CARD.search(page).group(0)))
        page_tokens = set(TOKENS.findall(page))
        assert len(card_tokens) == 1 and card_tokens == page_tokens  # the page's own token
        tokens.append(card_tokens.pop())
        # and it is accepted: make Alpha current through the card's form
        assert browser.post("/current", data={"session_id": "", "csrf_token": tokens[-1]},
                            headers={"Accept": "text/html"}).status_code in (200, 302, 303)
    assert tokens[0] != tokens[1]


FORM = re.compile(r'<form class="start-scan".*?</form>', re.S)
PROFILE = {"frames": 7, "settle_seconds": 0, "resolution": [640, 480], "jpeg_quality": 80}


def _form(client) -> str:
    page = client.get("/", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert CSRF_MARK not in page
    found = FORM.search(page)
    assert found, page
    assert set(TOKENS.findall(found.group(0))) == set(TOKENS.findall(page))  # asker's token
    # A key's request keeps no session, so each answer has a new token: compare without it.
    return TOKENS.sub('name="csrf_token" value="-"', found.group(0))


def _selected(form: str) -> str:
    found = re.search(r'<option value="([^"]+)" selected', form)
    assert found, form
    return found.group(1)


def test_the_scan_form_is_kept_until_a_profile_or_the_default_changes(client, data_dir,
                                                                      database_url):
    first = _form(client)
    builds = START_FORMS.builds
    assert _form(client) == first
    assert START_FORMS.builds == builds
    answer = client.put("/api/v1/profiles/benchy", json=PROFILE)
    assert answer.status_code in (200, 201), answer.get_data(as_text=True)
    assert "Benchy · 7 frames" in _form(client)
    assert client.put("/api/v1/profiles/default", json={"name": "benchy"}).status_code == 200
    assert _selected(_form(client)) == "benchy"
    assert client.put("/api/v1/profiles/benchy",
                      json={**PROFILE, "frames": 9}).status_code in (200, 201)
    assert "Benchy · 9 frames" in _form(client)
    builds = START_FORMS.builds
    _form(client)
    assert START_FORMS.builds == builds
    other = _selected(first) if _selected(first) != "benchy" else None
    assert other
    script = textwrap.dedent(f"""
        from scanner_app import create_app
        from scanner_app.config import load_settings
        from scanner_app.scans.profiles import set_default_profile
        app = create_app(load_settings())
        with app.app_context():
            set_default_profile({other!r})
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120,
                          env=process_env(data_dir, SCANNER_DATABASE_URL=database_url))
    assert done.returncode == 0, done.stdout + done.stderr
    assert _selected(_form(client)) == other
    assert client.delete("/api/v1/profiles/benchy").status_code in (200, 204)
    assert "Benchy" not in _form(client)
