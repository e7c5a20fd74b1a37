"""The bug of earlier systems, end to end: a scan started from the web produced two sessions
(the web made one, the orchestrator another). Here the session is resolved once where the
request enters; the job receives its id, reuses it and never creates a session or directory.
"""

from __future__ import annotations

from pathlib import Path

from tests.scans.conftest import Station


def session_dirs(station: Station) -> list[str]:
    return sorted(p.name for p in (station.data_dir / "sessions").iterdir()
                  if not p.name.startswith("."))


def all_sessions(station: Station) -> list[dict]:
    return station.client.get("/api/v1/sessions").get_json()["sessions"]


def test_web_started_scan_lands_in_the_one_session_the_web_resolved(make_station):
    station = make_station()
    station.start_worker()
    assert all_sessions(station) == [] and session_dirs(station) == []  # a new day

    # The browser form, as a person sends it (login cookie instead of an API key).
    from tests.web.conftest import sign_in

    browser = sign_in(station.app, "maker")
    answer = browser.post("/scans", data={"profile": "quick", "frames": "4"},
                          headers={"HX-Request": "true"})
    assert answer.status_code == 200, answer.data

    [made] = all_sessions(station)  # the web resolved (and made) today's session once
    assert session_dirs(station) == [str(made["id"])]
    scan_id = station.client.get("/api/v1/scans", query_string={"session_id": made["id"]}
                                 ).get_json()["scans"][0]["id"]
    done = station.wait_for_status(scan_id, "completed")
    assert done["source"] == "web" and done["session_id"] == made["id"]

    [after] = all_sessions(station)
    assert after["id"] == made["id"] and after["captures_count"] == 4
    assert session_dirs(station) == [str(made["id"])]


def test_scan_given_a_session_id_never_creates_a_session_or_directory(make_station):
    station = make_station()
    station.start_worker()
    trial = station.client.post("/api/v1/sessions",
                                json={"name": "Trial ABC-123", "make_current": False}
                                ).get_json()["session"]
    before_dirs = session_dirs(station)
    assert before_dirs == [str(trial["id"])]

    scan = station.start_scan(session_id=trial["id"], profile="quick", frames=3)
    done = station.wait_for_status(scan["id"], "completed")
    assert done["session_id"] == trial["id"]
    # No auto session appeared for today, though nothing else had made one yet.
    assert [s["id"] for s in all_sessions(station)] == [trial["id"]]
    assert session_dirs(station) == before_dirs
    frames = sorted(Path(station.session_dir(trial["id"]), "images", "scans", str(done["id"]))
                    .glob("*.jpg"))
    assert len(frames) == 3
