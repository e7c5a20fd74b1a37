"""Issue 11 through real `scanner worker` processes (and, where a stop must land at an exact
point, the job run in this process) with the mock rig. The mock platter keeps its
TRUE angle in the data dir, apart from the driver's belief, and the mock camera photographs
(and reports) that true angle: so every check below compares what the station recorded with
what physically happened. Frames are taken where they are recorded, also after an interruption
at any frame; the motor is held for the whole scan; a resumed scan keeps the exposure it
locked; a camera that stops answering interrupts the scan, resumable."""

from __future__ import annotations

import json
import time

from hal.angles import shortest_delta
from hal.mock.platter import MockPlatter
from hal.mock.rig import build_platter
from scanner_app.scans import job as scan_job
from scanner_app.scans.pipeline import CapturePipeline
from tests.scans.conftest import Station
from tests.scans.test_scan_job_failures import run_job
from tests.scans.test_scan_worker import assert_frames_consistent, assert_rig_released

FRAMES = 12
CAMERA_FRAMES = 6
WORKER = "rig-truth"
# A stop asked for right after frame k must land before frame k+1's photo: it has the move
# to it (a twelfth of a second at this speed) and the 0.2 s settle. The eleven resumes each
# home and turn back, about a turn: at 4 s a turn they were most of the test's time. (A
# stop that still lands a frame late leaves that count to the next scan.)
TURN = {"SCANNER_MOCK_SECONDS_PER_REV": "1"}
# The quick profile's timing with small frames: every check here is about angles, exposure
# and the motor, none about the picture, and 1280x960 frames cost rendering and recording.
TRUTH = {"frames": FRAMES, "settle_seconds": 0.2, "resolution": [320, 240], "jpeg_quality": 80}
# The same without the settle time, for the scans run in this process whose stops come
# during moves alone.
NO_SETTLE = {**TRUTH, "settle_seconds": 0}


def use_profile(station: Station, body: dict, name: str = "truth") -> str:
    """Store a scan profile on the station (workers read profiles from the database)."""
    response = station.client.put(f"/api/v1/profiles/{name}", json=body)
    assert response.status_code in (200, 201), response.get_json()
    return name


def platter_of(station: Station) -> MockPlatter:
    return build_platter(station.app.config["SCANNER_SETTINGS"].hal)


def frame_entries(station: Station, scan: dict) -> list[dict]:
    return station.metadata(scan)["frames"]


def assert_every_frame_true(station: Station, scan: dict) -> None:
    """Each frame's recorded angle is its planned angle and the platter's true angle when the
    camera took it (the mock camera reports the angle it photographed)."""
    captures = {c["path"]: c for c in station.captures(scan["session_id"])
                if c["scan_id"] == scan["id"]}
    entries = frame_entries(station, scan)
    assert [e["index"] for e in entries] == list(range(scan["frames_planned"]))
    for entry in entries:
        planned = entry["index"] * 360.0 / scan["frames_planned"]
        assert abs(entry["angle"] - planned) < 1e-6, entry
        assert captures[entry["file"]]["angle_deg"] == entry["angle"]
        seen = entry["camera"]["angle_deg"]
        assert abs(shortest_delta(seen, entry["angle"])) < 1e-6, (
            f"frame {entry['index']} recorded at {entry['angle']}° was taken at {seen}°")


def assert_one_exposure(station: Station, scan: dict) -> None:
    """Every frame, before and after each interruption, has the exposure the scan locked."""
    meta = station.metadata(scan)
    locked = meta["exposure"]
    assert locked is not None
    runs = [r for r in meta["runs"] if r.get("exposure")]
    assert all(r["exposure"] == locked for r in runs)
    assert not runs[0].get("exposure_reapplied")
    assert all(r.get("exposure_reapplied") for r in runs[1:])
    for entry in meta["frames"]:
        camera = entry["camera"]
        assert camera["exposure_locked"] is True
        assert (camera["exposure_time_us"], camera["analogue_gain"], camera["colour_gains"]) \
            == (locked["exposure_time_us"], locked["analogue_gain"], locked["colour_gains"])


def assert_belief_is_the_truth(station: Station, platter: MockPlatter) -> None:
    """What the next job will believe (the saved steps) is where the rotor really stands."""
    saved = json.loads((station.data_dir / "rig-position.json").read_text())
    assert saved["moving_to"] is None  # no move was cut short: the position is not in doubt
    belief = saved["steps"] / saved["steps_per_rev"] * 360.0
    assert abs(shortest_delta(platter.state().rotor_deg, belief)) < 1e-6


def test_a_resume_after_an_interruption_at_any_frame_takes_every_frame_at_its_true_angle(
        make_station):
    station = make_station(**TURN)
    station.start_worker("--name", WORKER)
    flag = station.data_dir / "worker-stop" / WORKER
    flag.parent.mkdir(exist_ok=True)
    platter = platter_of(station)
    stopped_after: set[int] = set()
    profile = use_profile(station, TRUTH)
    started = time.monotonic()
    # One scan interrupted after 1, 2, ... 11 frames, alternately by the worker's stop request
    # (between frames or mid-move) and by a camera timeout (at the next photo). A stop that
    # lands a frame late leaves that count to the next scan; three scans bound the test.
    for _ in range(3):
        wanted = sorted(set(range(1, FRAMES)) - stopped_after)
        if not wanted:
            break
        scan = station.start_scan(profile=profile, frames=FRAMES)
        for k in wanted:
            # Frames taken (their files written; each is recorded while the rig moves on).
            now = station.wait_for_scan(
                scan["id"], lambda s, k=k: len(station.frame_files(s)) >= k
                or s["status"] not in ("queued", "running"), f"{k} frames in")
            if now["status"] != "running" or len(station.frame_files(scan)) > k:
                continue
            by_camera = k % 2 == 0
            if by_camera:
                station.fault("timeout")
            else:
                flag.touch()  # what the worker writes when it is asked to stop
            stopped = station.wait_for_scan(
                scan["id"], lambda s: s["status"] in ("interrupted", "completed"), "stopped")
            station.fault(None)
            flag.unlink(missing_ok=True)
            if stopped["status"] == "completed":
                break  # the stop came after the last frame
            taken = stopped["frames_captured"]
            stopped_after.add(taken)
            reason = "camera took too long" if by_camera else "worker was stopped"
            assert reason in stopped["error"], stopped["error"]
            assert f"resume the scan to continue from frame {taken + 1}" in stopped["error"]
            assert_rig_released(station, stopped)
            assert_belief_is_the_truth(station, platter)
            assert station.action(scan["id"], "resume")["status"] == "queued"
        done = station.wait_for_status(scan["id"], "completed", timeout=60)
        assert_frames_consistent(station, done, FRAMES)
        assert_every_frame_true(station, done)
        assert_one_exposure(station, done)
        assert_belief_is_the_truth(station, platter)
    assert stopped_after >= set(range(1, FRAMES)), sorted(stopped_after)
    assert time.monotonic() - started < 240


def test_a_stop_mid_move_to_any_frame_resumes_with_every_frame_at_its_true_angle(
        make_station, monkeypatch):
    """Deterministic: the stop request comes while the platter turns from frame k-1 to frame
    k, for k = 1..11 (the turntable ends the move between two steps); each resume homes,
    turns to the next frame's true angle and goes on."""
    station = make_station()
    platter = platter_of(station)
    recorded: list[int] = []  # frames taken (handed to the capture pipeline)
    real = CapturePipeline.submit

    def submit(pipeline: CapturePipeline, frame) -> None:
        real(pipeline, frame)
        recorded.append(frame.index)

    step = 360.0 / FRAMES
    target = {"k": 0}

    def stop_mid_move() -> bool:
        k, rotor = target["k"], platter.state().rotor_deg % 360.0
        return len(recorded) == k and (k - 1) * step < rotor < k * step

    monkeypatch.setattr(CapturePipeline, "submit", submit)
    monkeypatch.setattr(scan_job, "stop_requested", stop_mid_move)
    scan = station.start_scan(profile=use_profile(station, NO_SETTLE), frames=FRAMES)
    for k in range(1, FRAMES):
        target["k"] = k
        assert run_job(station, scan["id"]) == "interrupted"
        stopped = station.scan(scan["id"])
        assert stopped["frames_captured"] == k
        assert stopped["error"].startswith(f"The scan stopped at frame {k + 1} of {FRAMES}: "
                                           "The worker was stopped during the scan.")
        saved = json.loads((station.data_dir / "rig-position.json").read_text())
        belief = saved["steps"] / saved["steps_per_rev"] * 360.0 % 360.0
        assert (k - 1) * step < belief < k * step  # really stopped between two frames
        assert_belief_is_the_truth(station, platter)
        assert station.action(scan["id"], "resume")["status"] == "queued"
    target["k"] = -1
    assert run_job(station, scan["id"]) == "completed"
    done = station.scan(scan["id"])
    assert_frames_consistent(station, done, FRAMES)
    assert_every_frame_true(station, done)
    assert_one_exposure(station, done)
    assert [run["first_frame"] for run in station.metadata(done)["runs"]] == list(range(FRAMES))


def test_the_motor_is_held_from_the_first_frame_to_the_last(make_station):
    station = make_station()
    station.start_worker()
    platter = platter_of(station)
    scan = station.start_scan(profile=use_profile(station, TRUTH), frames=FRAMES)
    held_samples = 0
    # Sampled while the scan is between its first and last frame: the scan is read before
    # and after the platter, so each sample is known to fall inside that stretch.
    last = f"frame_{FRAMES - 1:04d}.jpg"  # on disk once the last frame is taken
    while True:
        before = station.scan(scan["id"])
        energised = platter.state().energised
        after = station.scan(scan["id"])
        last_taken = any(f.name == last for f in station.frame_files(scan))
        if after["status"] not in ("queued", "running"):
            break
        if before["frames_captured"] >= 1 and not last_taken:
            assert energised, f"the motor was released after {before['frames_captured']} frames"
            held_samples += 1
    done = station.wait_for_status(scan["id"], "completed")
    assert held_samples >= 3  # the check above really ran during the scan
    # A released rotor would have fallen into a 1.8° detent: 30° would read 30.6°.
    assert_every_frame_true(station, done)
    assert platter.state().energised is False  # released once the scan ended
    assert_rig_released(station, done)
    position = station.metadata(done)["position"]
    assert position["known"] is False and "assumed" in position["note"]


def test_a_camera_that_stops_answering_interrupts_the_scan_with_motor_and_light_off(
        make_station):
    station = make_station(SCANNER_MOCK_CAPTURE_SECONDS="0.5")  # a timeout costs that long
    # Each photo takes that long too: 6 frames (2 before the fault, the rest after the
    # resume) prove the same as 12 did, in half the time.
    station.start_worker()
    scan = station.start_scan(profile="quick", frames=CAMERA_FRAMES)
    station.wait_for_scan(scan["id"], lambda s: s["frames_captured"] >= 2, "2 frames in")
    station.fault("timeout")
    asked = time.monotonic()
    stopped = station.wait_for_status(scan["id"], "interrupted", timeout=15)
    assert time.monotonic() - asked < 5
    taken = stopped["frames_captured"]
    assert stopped["error"] == (
        f"The scan stopped at frame {taken + 1} of {CAMERA_FRAMES}: The camera took too long to "
        "take a photo: this is often a loose ribbon cable or a weak power supply (use the official "
        f"5 V supply), check both and try again. The {taken} frames taken so far are kept; "
        f"resume the scan to continue from frame {taken + 1}.")
    assert_rig_released(station, stopped)
    assert platter_of(station).state().energised is False
    assert_frames_consistent(station, stopped, taken)

    station.fault(None)
    station.action(scan["id"], "resume")
    done = station.wait_for_status(scan["id"], "completed", timeout=60)
    assert_frames_consistent(station, done, CAMERA_FRAMES)
    assert_every_frame_true(station, done)
    assert_one_exposure(station, done)


def test_a_damaged_saved_exposure_is_metered_again_on_resume(make_station, monkeypatch):
    station = make_station()
    recorded: list[int] = []  # frames taken (handed to the capture pipeline)
    real = CapturePipeline.submit

    def submit(pipeline: CapturePipeline, frame) -> None:
        real(pipeline, frame)
        recorded.append(frame.index)

    monkeypatch.setattr(CapturePipeline, "submit", submit)
    monkeypatch.setattr(scan_job, "stop_requested", lambda: len(recorded) == 2)
    scan = station.start_scan(profile="quick", frames=4)
    assert run_job(station, scan["id"]) == "interrupted"
    path = (station.session_dir(scan["session_id"]) / "metadata" / "scans"
            / f"{scan['id']}.json")
    meta = json.loads(path.read_text())
    meta["runs"][0]["exposure"] = {"exposure_time_us": "bright"}  # edited by hand
    path.write_text(json.dumps(meta))

    monkeypatch.setattr(scan_job, "stop_requested", lambda: False)
    assert station.action(scan["id"], "resume")["status"] == "queued"
    assert run_job(station, scan["id"]) == "completed"
    done = station.metadata(station.scan(scan["id"]))
    assert done["runs"][1]["exposure"]["exposure_time_us"] > 0
    assert not done["runs"][1].get("exposure_reapplied")
    assert_frames_consistent(station, station.scan(scan["id"]), 4)
