"""The scans API without a worker: validation, one scan at a time, Redis down, disk reserve,
and the transitions the API itself decides (cancel of a queued scan, invalid requests)."""

from __future__ import annotations

import pytest
import redis
from rq import Queue
from sqlalchemy import func, select

from scanner_app.models import Scan, ScanSession
from scanner_app.platform.extensions import db
from tests.support import free_port


def error(response) -> tuple[int, str, str]:
    body = response.get_json()
    assert set(body) == {"error"}
    message = body["error"]["message"]
    assert message.endswith("."), message  # a sentence for a person
    return response.status_code, body["error"]["code"], message


def counts(station) -> tuple[int, int]:
    with station.app.app_context():
        return (db.session.scalar(select(func.count()).select_from(Scan)),
                db.session.scalar(select(func.count()).select_from(ScanSession)))


def hardware_queue(station) -> Queue:
    return Queue("hardware", connection=redis.Redis.from_url(station.redis_url))


def test_second_scan_is_refused_while_one_is_queued_and_a_queued_scan_cancels_at_once(
        make_station):
    station = make_station()
    first = station.start_scan(profile="quick", frames=6)
    assert first["status"] == "queued" and first["percent"] == 0.0
    assert first["eta_seconds"] is None
    assert hardware_queue(station).job_ids == [f"scan-{first['id']}"]

    status, code, message = error(station.client.post("/api/v1/scans", json={}))
    assert (status, code) == (409, "scan_active")
    assert f"Scan {first['id']} is queued" in message and "cancel" in message
    assert counts(station) == (1, 1)

    cancelled = station.action(first["id"], "cancel")
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    assert hardware_queue(station).job_ids == []  # the job will never run
    status, code, _ = error(station.client.post(f"/api/v1/scans/{first['id']}/cancel"))
    assert (status, code) == (409, "invalid_transition")

    second = station.start_scan(profile="quick", frames=4)
    assert second["id"] != first["id"] and second["session_id"] == first["session_id"]
    session = station.session(first["session_id"])
    assert session["scans_count"] == 2


def test_redis_down_answers_503_and_leaves_nothing_behind(make_station):
    station = make_station(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    status, code, message = error(station.client.post("/api/v1/scans", json={"frames": 4}))
    assert (status, code) == (503, "queue_unavailable")
    assert "scanner run" in message and "SCANNER_REDIS_URL" in message
    assert counts(station) == (0, 0)  # no scan row, and no session made for it either


def test_redis_failing_at_enqueue_removes_the_scan_and_its_count(make_station, monkeypatch):
    station = make_station()
    from scanner_app.platform import queues

    def broken(*_args, **_kwargs):
        raise redis.exceptions.ConnectionError("Connection refused")

    # Redis answered the ping, then refused the job: the queue module's public enqueue fails.
    monkeypatch.setattr(queues, "enqueue", broken)
    status, code, _ = error(station.client.post("/api/v1/scans", json={"frames": 4}))
    assert (status, code) == (503, "queue_unavailable")
    with station.app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Scan)) == 0
        session = db.session.scalars(select(ScanSession)).one()
        assert session.scans_count == 0


def test_disk_reserve_refuses_the_scan_before_anything_is_made(make_station):
    station = make_station(SCANNER_DISK_RESERVE_MB=str(10**9))
    status, code, message = error(station.client.post("/api/v1/scans", json={}))
    assert (status, code) == (507, "disk_space")
    assert "not enough free space" in message and "SCANNER_DISK_RESERVE_MB" in message
    assert counts(station) == (0, 0)
    assert hardware_queue(station).job_ids == []


@pytest.mark.parametrize("body, code, words", [
    ({"profile": "huge"}, "invalid_profile", "detailed, photogrammetry, quick, standard"),
    ({"profile": 3}, "invalid_profile", "name of a scan profile"),
    ({"frames": 0}, "invalid_frames", "1 to 720"),
    ({"frames": 721}, "invalid_frames", "1 to 720"),
    ({"frames": "12"}, "invalid_frames", "whole number"),
    ({"frames": True}, "invalid_frames", "whole number"),
    ({"session_id": "abc"}, "invalid_id", "whole number"),
    ({"speed": 2}, "invalid_field", "speed"),
])
def test_invalid_requests_are_400_with_a_sentence(make_station, body, code, words):
    station = make_station()
    status, got, message = error(station.client.post("/api/v1/scans", json=body))
    assert (status, got) == (400, code)
    assert words in message
    assert counts(station) == (0, 0)


def test_unknown_session_is_404_and_no_scan(make_station):
    station = make_station()
    status, code, _ = error(station.client.post("/api/v1/scans", json={"session_id": 99}))
    assert (status, code) == (404, "not_found")
    assert counts(station) == (0, 0)
    assert error(station.client.get("/api/v1/scans/5"))[:2] == (404, "not_found")


def test_scan_goes_to_the_requested_session_and_profile_frames_apply(make_station):
    station = make_station()
    made = station.client.post("/api/v1/sessions", json={
        "name": "Trial 7", "make_current": False}).get_json()["session"]
    scan = station.start_scan(session_id=made["id"], profile="standard")
    assert scan["session_id"] == made["id"] and scan["frames_planned"] == 36
    listed = station.client.get(f"/api/v1/scans?session_id={made['id']}").get_json()
    assert [s["id"] for s in listed["scans"]] == [scan["id"]]
    assert listed["active"]["id"] == scan["id"]


def test_invalid_transitions_are_409(make_station):
    station = make_station()
    scan = station.start_scan(profile="quick", frames=4)
    status, code, message = error(station.client.post(f"/api/v1/scans/{scan['id']}/resume"))
    assert (status, code) == (409, "invalid_transition") and "not paused" in message
    paused = station.action(scan["id"], "pause")  # a queued scan pauses as it starts
    assert paused["control"] == "pause"
    assert error(station.client.post(f"/api/v1/scans/{scan['id']}/pause"))[:2] == (
        409, "invalid_transition")
    assert station.action(scan["id"], "resume")["control"] is None
    station.action(scan["id"], "cancel")
    for action in ("pause", "resume", "cancel"):
        status, code, message = error(
            station.client.post(f"/api/v1/scans/{scan['id']}/{action}"))
        assert (status, code) == (409, "invalid_transition") and "cancelled" in message


def test_scans_api_needs_a_key(make_station):
    station = make_station()
    anonymous = station.app.test_client()
    assert anonymous.post("/api/v1/scans", json={}).status_code == 401
    assert anonymous.get("/api/v1/scans/1").status_code == 401


def test_session_deleted_between_resolving_and_inserting_is_404_not_409(make_station,
                                                                        database_url,
                                                                        monkeypatch):
    """The session can go (deleted, or merged away) after the resolver picked it: the insert
    fails its foreign key, and that is 'no such session', not 'another scan started'."""
    station = make_station(database_url)
    from scanner_app.scans import service as scans
    from scanner_app.sessions.service import delete_session

    real_resolve = scans.resolve_session
    gone: list[int] = []

    def resolve_then_lose(requested: int | None) -> int:
        session_id = real_resolve(requested)
        delete_session(session_id)  # what a DELETE in another request would do right now
        gone.append(session_id)
        return session_id

    monkeypatch.setattr(scans, "resolve_session", resolve_then_lose)
    status, code, message = error(station.client.post("/api/v1/scans", json={"frames": 4}))
    assert (status, code) == (404, "not_found")
    assert f"Session {gone[0]} was deleted or merged" in message and "start the scan" in message
    assert counts(station) == (0, 0)
    assert hardware_queue(station).job_ids == []
    assert not station.session_dir(gone[0]).exists()


def test_unknown_fields_are_named_in_a_sentence(make_station):
    station = make_station()
    status, code, message = error(station.client.post(
        "/api/v1/scans", json={"speed": 2, "colour": "red", "frames": 4}))
    assert (status, code) == (400, "invalid_field")
    assert message == ("A scan does not take 'colour', 'speed'; leave them out. A scan takes "
                       "'session_id', 'profile', 'frames' or 'rings', and 'turn_over', all "
                       "optional.")
    assert "[" not in message
