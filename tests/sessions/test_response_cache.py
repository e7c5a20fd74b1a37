"""GET /api/v1/sessions keeps its JSON body per process under the sessions-changed stamp
(issue 15): a repeated request builds nothing, and any change to the sessions, made in this
process or another one, shows in the very next request. SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from scanner_app.platform.web.response_cache import StampedCache
from scanner_app.sessions.api import LIST_BODIES
from tests.support import process_env


def _names(client, **args) -> list[str]:
    answer = client.get("/api/v1/sessions", query_string=args)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.mimetype == "application/json"
    return [s["name"] for s in answer.get_json()["sessions"]]


def _create(client, name: str) -> int:
    answer = client.post("/api/v1/sessions", json={"name": name, "make_current": False})
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.get_json()["session"]["id"]


def test_a_repeated_list_is_not_built_again(client):
    _create(client, "Alpha")
    first = client.get("/api/v1/sessions").get_data()
    builds = LIST_BODIES.builds
    for _ in range(3):
        assert client.get("/api/v1/sessions").get_data() == first
    assert LIST_BODIES.builds == builds
    # Another page or search is another body.
    assert _names(client, q="alp") == ["Alpha"]
    assert _names(client, per_page=1) == ["Alpha"]
    assert LIST_BODIES.builds == builds + 2
    assert _names(client, q="ALP") == ["Alpha"]  # the same search, any case: kept
    assert LIST_BODIES.builds == builds + 2


def test_every_change_in_this_process_shows_in_the_next_request(client):
    first = _create(client, "Alpha")
    assert _names(client) == ["Alpha"]
    _create(client, "Beta")
    assert _names(client) == ["Beta", "Alpha"]
    assert client.patch(f"/api/v1/sessions/{first}", json={"name": "Gamma"}).status_code == 200
    assert _names(client) == ["Beta", "Gamma"]
    assert _names(client, q="gam") == ["Gamma"]
    totals = client.get("/api/v1/sessions").get_json()["totals"]
    assert client.delete(f"/api/v1/sessions/{first}").status_code == 204
    assert _names(client) == ["Beta"]
    assert _names(client, q="gam") == []
    assert client.get("/api/v1/sessions").get_json()["totals"] == totals


def test_a_change_made_by_another_process_shows_in_the_next_request(client, data_dir,
                                                                      database_url):
    session_id = _create(client, "Alpha")
    assert _names(client) == ["Alpha"]
    builds = LIST_BODIES.builds
    assert _names(client) == ["Alpha"]
    assert LIST_BODIES.builds == builds  # kept: the next answer comes from the cache
    script = textwrap.dedent(f"""
        from scanner_app import create_app
        from scanner_app.config import load_settings
        from scanner_app.sessions import service
        app = create_app(load_settings())
        with app.app_context():
            service.update_session({session_id}, {{"name": "Renamed elsewhere"}})
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120,
                          env=process_env(data_dir, SCANNER_DATABASE_URL=database_url))
    assert done.returncode == 0, done.stdout + done.stderr
    assert _names(client) == ["Renamed elsewhere"]


def test_a_body_is_built_again_when_its_stamp_changes_or_it_is_too_old(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("scanner_app.platform.web.response_cache.time.monotonic",
                        lambda: now[0])
    cache: StampedCache[str] = StampedCache(size=2, max_age=60)
    built: list[str] = []

    def build(value: str):
        return lambda: built.append(value) or value

    assert cache.get_or_build("k", b"s1", build("a")) == "a"
    assert cache.get_or_build("k", b"s1", build("b")) == "a"
    assert cache.get_or_build("k", b"s2", build("c")) == "c"  # the stamp changed
    now[0] += 60
    assert cache.get_or_build("k", b"s2", build("d")) == "d"  # too old
    assert cache.get_or_build("k", None, build("e")) == "e"  # no stamp: never kept
    assert cache.get_or_build("k", None, build("f")) == "f"
    cache.get_or_build("x", b"s", build("x"))
    cache.get_or_build("y", b"s", build("y"))  # at most two keys: "k" goes
    assert cache.get("k", b"s2") is None
    assert built == ["a", "c", "d", "e", "f", "x", "y"]
