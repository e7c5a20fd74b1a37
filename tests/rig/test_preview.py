"""The live preview against a real `scanner worker` on the mock rig: the MJPEG stream carries
distinct frames, the preview job ends within seconds of the stream closing (light off, motor
released), a scan queued while previewing starts at once and the stream shows its frames,
a killed preview work-horse leaves the rig switched off, a snapshot lands in the current
session, and the virtual start button starts a scan through the button daemon."""

from __future__ import annotations

import io
import os
import signal
import time

from PIL import Image
from rq.job import Job

from scanner_app.rig import channel
from scanner_app.rig.relay import BOUNDARY, placeholder
from tests.support import wait_until

PREVIEW_SIZE = (640, 480)


def _jpeg_of(part: bytes) -> bytes:
    head, _, rest = part.partition(b"\r\n\r\n")
    assert head.startswith(f"--{BOUNDARY}\r\nContent-Type: image/jpeg".encode()), head
    length = int(head.rsplit(b"Content-Length: ", 1)[1])
    assert rest[length:] == b"\r\n"
    return rest[:length]


def _read_live(parts, want: int, timeout: float, skip: set[bytes] | None = None) -> list[bytes]:
    """`want` distinct JPEGs from the stream that are not the placeholder (nor in `skip`)."""
    seen: list[bytes] = []
    deadline = time.monotonic() + timeout
    ignore = {placeholder(), *(skip or set())}
    for part in parts:
        jpeg = _jpeg_of(part)
        if jpeg not in ignore and jpeg not in seen:
            seen.append(jpeg)
            if len(seen) >= want:
                return seen
        assert time.monotonic() < deadline, f"only {len(seen)} distinct frames in {timeout} s"
    raise AssertionError("the stream ended")


def test_stream_carries_distinct_frames_and_the_preview_ends_after_it_closes(
        make_station) -> None:
    station = make_station()
    station.start_worker()
    response = station.client.get("/station/preview.mjpg", buffered=False)
    assert response.status_code == 200
    assert response.mimetype == "multipart/x-mixed-replace"
    assert response.headers["Cache-Control"] == "no-store"
    frames = _read_live(iter(response.response), 3, timeout=30)
    for jpeg in frames:
        assert Image.open(io.BytesIO(jpeg)).size == PREVIEW_SIZE
    job_id = station.preview_job()
    assert job_id is not None
    rig = station.client.get("/api/v1/rig").get_json()["rig"]
    assert rig["preview_live"] is True
    assert rig["state"]["light_on"] is True  # lit as the next scan would be
    meta = station.client.get("/api/v1/rig/preview").get_json()["meta"]
    assert meta["exposure"]["exposure_time_us"] > 0  # metered once, held
    assert meta["overlay"]["source"] == "nominal" and len(meta["overlay"]["rim"]) == 48
    cx, cy = meta["overlay"]["centre"]
    assert 0.3 < cx < 0.7 and 0.3 < cy < 0.9  # the platter centre is in the frame

    response.close()  # the tab goes away
    station.wait_preview_gone(timeout=10)
    assert station.preview_seconds < 8
    job = Job.fetch(job_id, connection=station.redis)
    wait_until(lambda: job.get_status(refresh=True) == "finished", 5, "the job to finish")
    assert job.return_value() == "nobody watches"
    state = channel.last_state(station.redis)
    assert state["light_on"] is False and not station.motor_energised()


def test_a_scan_queued_while_previewing_starts_at_once_and_the_stream_shows_it(
        make_station) -> None:
    station = make_station()
    station.start_worker()
    response = station.client.get("/station/preview.mjpg", buffered=False)
    parts = iter(response.response)
    live = _read_live(parts, 1, timeout=30)
    preview_job = station.preview_job()

    answer = station.client.post("/api/v1/scans", json={"frames": 6})
    assert answer.status_code == 202
    scan = answer.get_json()["scan"]
    queued = time.monotonic()

    def running() -> bool:
        status = station.client.get(f"/api/v1/scans/{scan['id']}").get_json()["scan"]["status"]
        return status in ("running", "completed")

    wait_until(running, 10, "the scan to start")
    assert time.monotonic() - queued < 5, "the preview did not yield to the scan at once"
    assert Job.fetch(preview_job, connection=station.redis).return_value() == \
        "another hardware job is waiting"

    # Meanwhile the stream shows the scan's frames (their thumbnails), not the live preview.
    thumbs = station.data_dir / "sessions" / str(scan["session_id"]) / "metadata" / "thumbnails"
    deadline = time.monotonic() + 30
    for part in parts:  # (a placeholder until the first thumbnail exists)
        if _jpeg_of(part) in {p.read_bytes() for p in thumbs.glob("*.jpg")}:
            break
        assert _jpeg_of(part) not in live, "a live frame while the scan has the rig"
        assert time.monotonic() < deadline, "the stream never showed the scan's frames"

    # Controls wait for the scan: refused with a sentence while it is active.
    while station.client.get(f"/api/v1/scans/{scan['id']}").get_json()["scan"]["status"] \
            != "completed":
        refused = station.client.post("/api/v1/rig/turn", json={"by": 10})
        if refused.status_code == 409:
            assert f"Scan {scan['id']} is" in refused.get_json()["error"]["message"]
        time.sleep(0.1)
    # After the scan, the live preview comes back by itself.
    _read_live(parts, 1, timeout=30, skip=set(live) | {p.read_bytes()
                                                      for p in thumbs.glob("*.jpg")})
    response.close()
    station.wait_preview_gone(timeout=10)


def test_light_on_and_a_killed_preview_leave_the_rig_switched_off(make_station) -> None:
    station = make_station()
    station.start_worker()
    answer = station.client.post("/api/v1/rig/light", json={"on": True})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["rig"]["state"]["light_on"] is True  # the mock light's own word
    job = Job.fetch(station.preview_job(), connection=station.redis)
    pid = wait_until(lambda: job.get_meta(refresh=True).get("pid"), 10, "the preview's pid")

    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: "Rig switched off (the work-horse of job " + job.id in
               station.log("worker"), 15, "the worker to switch the rig off")
    station.wait_preview_gone(timeout=10)  # the killed job's clean-up dropped its frame
    assert not station.motor_energised()

    answer = station.client.post("/api/v1/rig/light", json={"on": False})
    assert answer.status_code == 200
    assert answer.get_json()["rig"]["state"]["light_on"] is False


def test_snapshot_jpeg_snapshot_into_the_session_and_the_virtual_button(make_station) -> None:
    station = make_station()
    station.start_worker()
    answer = station.client.get("/station/preview.jpg")
    assert answer.status_code == 200 and answer.mimetype == "image/jpeg"
    assert Image.open(io.BytesIO(answer.data)).size == PREVIEW_SIZE

    answer = station.client.post("/api/v1/rig/snapshot")
    assert answer.status_code == 202, answer.get_json()
    scan = answer.get_json()["scan"]
    assert scan["frames_planned"] == 1 and scan["source"] == "api"

    def completed() -> dict | None:
        body = station.client.get(f"/api/v1/scans/{scan['id']}").get_json()["scan"]
        return body if body["status"] == "completed" else None

    wait_until(completed, 30, "the snapshot to be taken")
    folder = (station.data_dir / "sessions" / str(scan["session_id"]) / "images" / "scans"
              / str(scan["id"]))
    assert len([p for p in folder.iterdir() if p.is_file()]) == 1

    station.start_button()
    answer = station.client.post("/api/v1/rig/button")
    assert answer.status_code == 202 and answer.get_json() == {"pressed": True}

    def button_scan() -> dict | None:
        scans = station.client.get("/api/v1/scans").get_json()["scans"]
        return next((s for s in scans if s["source"] == "button"), None)

    pressed = wait_until(button_scan, 15, "the button's scan")
    assert pressed["session_id"] == scan["session_id"]  # the current session, resolved once


def test_a_stopping_worker_ends_the_preview_at_once(make_station) -> None:
    """Ctrl-C of `scanner run` (SIGTERM to the worker): a watched preview does not keep the
    worker waiting; it ends within a frame and the rig is closed (light off)."""
    station = make_station()
    worker = station.start_worker()
    response = station.client.get("/station/preview.mjpg", buffered=False)
    _read_live(iter(response.response), 1, timeout=30)
    job = Job.fetch(station.preview_job(), connection=station.redis)
    worker.send_signal(signal.SIGTERM)
    stopped = time.monotonic()
    worker.wait(15)
    assert time.monotonic() - stopped < 8, station.log("worker")
    assert job.get_status(refresh=True) == "finished"
    assert job.return_value() == "the worker is stopping"
    assert channel.last_state(station.redis)["light_on"] is False
    assert not station.motor_energised()
    response.close()
