"""The /sessions list partial (htmx paging and search) is kept per process under the
sessions-changed stamp, like the API's list (issue 15): a repeated request builds nothing, and
a new, renamed, deleted or current session shows in the very next one. SQLite and PostgreSQL."""

from __future__ import annotations

import re

from scanner_app.sessions.views import LIST_PARTIALS

HX = {"HX-Request": "true"}


def _rows(client, **args) -> list[str]:
    answer = client.get("/sessions", query_string=args, headers=HX)
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert html.startswith('<section id="session-list"')  # the partial, not the page
    return re.findall(r'<a href="/sessions/\d+">([^<]+)</a>', html)


def _create(client, name: str) -> int:
    answer = client.post("/api/v1/sessions", json={"name": name, "make_current": False})
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.get_json()["session"]["id"]


def test_a_repeated_list_partial_is_not_built_again(client):
    _create(client, "Alpha")
    first = _rows(client)
    builds = LIST_PARTIALS.builds
    assert [_rows(client) for _ in range(3)] == [first] * 3
    assert LIST_PARTIALS.builds == builds
    assert _rows(client, q="ALP") == ["Alpha"]
    assert LIST_PARTIALS.builds == builds + 1


def test_every_change_shows_in_the_next_list_partial(client):
    first = _create(client, "Alpha")
    assert _rows(client) == ["Alpha"]
    _create(client, "Beta")
    assert _rows(client) == ["Beta", "Alpha"]
    assert client.patch(f"/api/v1/sessions/{first}", json={"name": "Gamma"}).status_code == 200
    assert _rows(client) == ["Beta", "Gamma"]
    assert 'badge-current' not in client.get("/sessions", headers=HX).get_data(as_text=True)
    assert client.put("/api/v1/sessions/current", json={"session_id": first}).status_code == 200
    assert 'badge-current' in client.get("/sessions", headers=HX).get_data(as_text=True)
    doomed = _create(client, "Delta")
    assert _rows(client) == ["Delta", "Beta", "Gamma"]
    assert client.delete(f"/api/v1/sessions/{doomed}").status_code == 204
    assert _rows(client) == ["Beta", "Gamma"]
