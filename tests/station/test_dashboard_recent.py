"""The dashboard lists the newest sessions and offers a search for the others (issue 15: a
station runs for years; the dashboard must neither list every session nor hide them)."""

from __future__ import annotations

import re

from scanner_app.station.dashboard import RECENT_SESSIONS


def _create(client, name: str) -> int:
    answer = client.post("/api/v1/sessions", json={"name": name, "make_current": False})
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    return (body.get("session") or body)["id"]


def _recent_names(html: str) -> list[str]:
    block = html.split('<ul class="recent-sessions">', 1)[1].split("</ul>", 1)[0]
    return re.findall(r'<a href="/sessions/\d+">([^<]+)</a>', block)


def test_the_dashboard_shows_the_newest_sessions_and_a_search(client):
    names = [f"Trial {n:02d}" for n in range(RECENT_SESSIONS + 3)]
    for name in names:
        _create(client, name)
    html = client.get("/").get_data(as_text=True)
    assert _recent_names(html) == list(reversed(names))[:RECENT_SESSIONS]
    assert 'action="/sessions"' in html and 'name="q"' in html
    # What the search box sends finds an older session the list no longer shows.
    found = client.get("/sessions?q=Trial 00").get_data(as_text=True)
    assert "Trial 00" in found and "Trial 07" not in found


def test_a_new_session_shows_on_the_next_dashboard(client):
    _create(client, "First")
    assert _recent_names(client.get("/").get_data(as_text=True)) == ["First"]
    _create(client, "Second")
    assert _recent_names(client.get("/").get_data(as_text=True)) == ["Second", "First"]


def test_no_list_before_the_first_session(client):
    html = client.get("/").get_data(as_text=True)
    assert 'class="recent-sessions"' not in html
