"""The simulated platter is a physical object: its true angle lives in the data dir apart
from the driver's belief, and the photos show the truth. A hal-level scan "job" that builds a
new rig per run (as the worker does) must land every frame at its true angle, whatever frame
it was interrupted at; and the exposure re-applied on resume must equal the one before."""

from __future__ import annotations

from pathlib import Path

import pytest

from hal import ExposureSettings, HalSettings, HardwareStopped, load_rig, safe_off
from hal.mock.rig import build_platter
from hal.mock.turntable import MockTurntable

FRAMES = 12
HALF_STEP_DEG = 360 / 57600 / 2


def fast(**mock) -> HalSettings:
    return HalSettings.from_mapping({"mock": {"capture_seconds": 0, "seconds_per_rev": 0,
                                              "resolution": [64, 48], **mock}})


def run_job(settings: HalSettings, out: Path, done: dict[int, dict], stop_after: int | None,
            saved_exposure: dict | None) -> dict | None:
    """What the scan job does (see the report): a new rig, home, hold, lock or re-apply the
    saved exposure, one frame per angle; `stop_after` plays SIGTERM after that frame."""
    with load_rig(settings) as rig:
        rig.turntable.home()
        with rig.hold_position():
            if saved_exposure is None:
                exposure = rig.camera.lock_exposure().as_dict()
            else:
                exposure = rig.camera.apply_exposure(
                    ExposureSettings.from_dict(saved_exposure)).as_dict()
            for i in range(FRAMES):
                if i in done:
                    continue
                angle = i * 360 / FRAMES
                rig.turntable.move_to(angle)
                info = rig.camera.capture(out / f"f{i}.jpg", exif={"angle_deg": angle})
                done[i] = {"recorded": rig.turntable.angle_deg,
                           "true": info.settings["angle_deg"],
                           "exposure_time_us": info.settings["exposure_time_us"]}
                if stop_after == i:
                    return exposure
    return exposure


@pytest.mark.parametrize("stop_after", range(FRAMES))
def test_resume_after_an_interruption_at_every_frame_lands_on_the_true_angles(
        tmp_path: Path, stop_after: int) -> None:
    settings = fast()
    done: dict[int, dict] = {}
    exposure = run_job(settings, tmp_path, done, stop_after, None)
    # Between jobs someone bumps nothing; the worker restarts; the next job resumes.
    again = run_job(settings, tmp_path, done, None, exposure)
    assert sorted(done) == list(range(FRAMES))
    for i, frame in done.items():
        assert frame["recorded"] == pytest.approx(i * 360 / FRAMES, abs=HALF_STEP_DEG)
        assert frame["true"] == pytest.approx(frame["recorded"], abs=1e-9), i
    assert again == exposure  # the resumed frames were exposed like the first ones
    assert {f["exposure_time_us"] for f in done.values()} == {exposure["exposure_time_us"]}


def test_without_a_saved_position_a_resume_would_shoot_the_wrong_angles(tmp_path: Path):
    # The old behaviour (position not kept): the new turntable counts from 0 where it stands.
    settings = fast()
    platter = build_platter(settings)
    first = MockTurntable(seconds_per_rev=0, platter=platter, endstop=False)
    first.move_to(100)
    second = MockTurntable(seconds_per_rev=0, platter=platter, endstop=False)
    second.home()
    second.move_to(110)
    assert platter.true_angle() != pytest.approx(110, abs=1)  # it stands at 210
    # ... and the rig built from settings (position kept) gets it right:
    platter.set_true_angle(0)
    with load_rig(settings) as rig:
        rig.turntable.move_to(100)
    with load_rig(settings) as rig:
        rig.turntable.home()
        with rig.hold_position():
            rig.turntable.move_to(110)
            assert build_platter(settings).true_angle() == pytest.approx(110)


def test_truth_survives_the_process_and_can_be_perturbed(tmp_path: Path) -> None:
    settings = fast()
    with load_rig(settings) as rig, rig.hold_position():
        rig.turntable.move_to(45)
    assert settings.platter_file.exists()
    assert build_platter(settings).true_angle() == pytest.approx(45.0)  # snapped to 1.8°
    build_platter(settings).set_true_angle(50)  # someone turns the platter by hand
    with load_rig(settings) as rig, rig.hold_position():
        info = rig.camera.capture(tmp_path / "x.jpg")
        assert rig.turntable.angle_deg == 45  # the belief ...
        assert info.settings["angle_deg"] == 50  # ... and the truth the photo shows


def test_a_released_motor_lets_the_rotor_fall_into_a_detent(tmp_path: Path) -> None:
    settings = fast()
    with load_rig(settings) as rig:
        rig.turntable.move_to(10)  # not held: released after the move
        loose = rig.camera.capture(tmp_path / "a.jpg").settings["angle_deg"]
        with rig.hold_position():
            held = rig.camera.capture(tmp_path / "b.jpg").settings["angle_deg"]
    assert loose == pytest.approx(10.8)  # 6 detents of 1.8°
    assert held == pytest.approx(10.0)


def test_a_stop_mid_move_keeps_belief_and_truth_together(tmp_path: Path) -> None:
    settings = HalSettings.from_mapping({"mock": {"capture_seconds": 0, "seconds_per_rev": 8,
                                                  "resolution": [64, 48]}})
    with load_rig(settings) as rig, rig.hold_position():
        slices = iter(range(100))
        rig.turntable._sleep = lambda s: None  # no real waiting; slices still advance
        rig.set_stop_check(lambda: next(slices) >= 7)
        with pytest.raises(HardwareStopped):
            rig.turntable.move_to(90)
        believed = rig.turntable.angle_deg
        assert 0 < believed < 90
        assert build_platter(settings).true_angle() == pytest.approx(believed)
    with load_rig(settings) as rig:
        assert rig.turntable.angle_deg == pytest.approx(believed)


def test_exposure_takes_effect_frames_later_and_apply_waits_for_it(tmp_path: Path) -> None:
    settings = fast(control_delay_frames=3)
    with load_rig(settings) as rig:
        cam = rig.camera
        before = cam.frames
        wanted = ExposureSettings(exposure_time_us=9000, analogue_gain=1.0,
                                  colour_gains=(1.7, 1.4))
        assert cam.apply_exposure(wanted) == wanted
        assert cam.frames - before == 4  # three frames in flight, then the one showing it
        info = cam.capture(tmp_path / "a.jpg")
        assert info.settings["exposure_time_us"] == 9000
        assert info.settings["colour_gains"] == [1.7, 1.4]


def test_safe_off_releases_the_simulated_motor() -> None:
    settings = fast()
    rig = load_rig(settings)
    rig.turntable.enable()
    assert build_platter(settings).state().energised  # a killed worker leaves it on
    assert safe_off(settings) and not build_platter(settings).state().energised
    rig.close()


def test_a_kill_mid_move_leaves_the_position_uncertain_until_homed() -> None:
    settings = HalSettings.from_mapping({
        "mock": {"capture_seconds": 0, "seconds_per_rev": 8, "resolution": [64, 48]},
        "turntable": {"pins": {"endstop": 6}},  # the mock's switch sits at the true 0°
    })
    left_behind: dict[str, str] = {}
    slices = iter(range(1000))

    def killed_here(_seconds: float) -> None:
        if next(slices) == 5:  # what is on disk when the process dies at this instant
            left_behind["position"] = settings.position_file.read_text()
            left_behind["truth"] = settings.platter_file.read_text()

    with load_rig(settings) as rig:
        rig.turntable._sleep = killed_here
        rig.turntable.move_to(90)
    settings.position_file.write_text(left_behind["position"])
    settings.platter_file.write_text(left_behind["truth"])
    fast_homing = HalSettings.from_mapping({**settings.as_dict(),
                                            "mock": {**settings.as_dict()["mock"],
                                                     "seconds_per_rev": 0}})
    with load_rig(fast_homing) as rig:
        assert not rig.position_known
        assert "cut short" in rig.turntable.position_note
        assert build_platter(settings).true_angle() != pytest.approx(rig.turntable.angle_deg)
        rig.turntable.home()
        assert rig.position_known
        with rig.hold_position():
            rig.turntable.move_to(30)
            assert build_platter(settings).true_angle() == pytest.approx(30)
