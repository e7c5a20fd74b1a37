"""A snapshot into the session (a one-frame scan, taken by a real `scanner worker` on the mock
rig) is marked as one: its profile is the reserved "snapshot" (in the API, its profile copy,
its metadata and the session page), not the default profile; the profile list does not offer
it and no profile may take its name. SQLite and PostgreSQL."""

from __future__ import annotations

import json

from scanner_app.models import Scan
from scanner_app.platform.extensions import db
from tests.support import wait_until

HX = {"HX-Request": "true"}


def test_a_snapshot_is_shown_as_a_snapshot(make_station, database_url) -> None:
    station = make_station(database_url)
    station.start_worker()
    default = station.client.get("/api/v1/profiles").get_json()["default_profile"]
    assert default != "snapshot"

    answer = station.post("/snapshot")
    assert answer.status_code == 202, answer.get_json()
    scan = answer.get_json()["scan"]
    assert scan["profile"] == "snapshot" and scan["frames_planned"] == 1

    def completed() -> dict | None:
        body = station.client.get(f"/api/v1/scans/{scan['id']}").get_json()["scan"]
        return body if body["status"] == "completed" else None

    done = wait_until(completed, 30, f"the snapshot to be taken ({station.log('worker')})")
    assert done["profile"] == "snapshot" and done["frames_captured"] == 1
    listed = station.client.get(f"/api/v1/scans?session_id={scan['session_id']}").get_json()
    assert [s["profile"] for s in listed["scans"]] == ["snapshot"]

    with station.app.app_context():
        kept = json.loads(db.session.get(Scan, scan["id"]).profile_snapshot)
    assert kept["name"] == "snapshot" and kept["frames"] == 1
    assert kept["auto_reconstruct"] is False
    metadata = json.loads((station.data_dir / "sessions" / str(scan["session_id"])
                           / "metadata" / "scans" / f"{scan['id']}.json").read_text())
    assert metadata["profile"]["name"] == "snapshot", metadata["profile"]  # the worker's
    assert metadata["scan"]["profile"] == "snapshot"

    page = station.client.get(f"/sessions/{scan['session_id']}/scans", headers=HX)
    html = page.get_data(as_text=True)
    assert "Snapshot ·" in html and f"{default.capitalize()} ·" not in html, html

    # Never offered, and no profile may take the name.
    names = [p["name"] for p in station.client.get("/api/v1/profiles").get_json()["profiles"]]
    assert "snapshot" not in names
    refused = station.client.put("/api/v1/profiles/snapshot", json={"frames": 12})
    assert refused.status_code == 400 and "other than 'default' or 'snapshot'" in \
        refused.get_json()["error"]["message"]
    refused = station.client.post("/api/v1/scans", json={"profile": "snapshot"})
    assert refused.status_code == 400, refused.get_json()
