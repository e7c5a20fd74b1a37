"""Rig calibration recovers the mock rig's true camera from photos of a ChArUco board."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from hal.calibration import (
    Calibration,
    CalibrationError,
    load_calibration,
    run_calibration,
    save_calibration,
    solve_calibration,
)
from hal.geometry import Intrinsics, RigGeometry
from hal.interfaces import CaptureInfo, Rig
from hal.mock.light import MockLight
from hal.mock.scene import MockScene
from hal.mock.turntable import MockTurntable


class SceneCamera:
    """Stand-in for the mock camera once it renders MockScene: writes a real JPEG of
    whatever `scene.content` says is on the platter, at the turntable's angle."""

    def __init__(self, scene: MockScene, turntable: MockTurntable, supersample: int = 1):
        self.scene = scene
        self._turntable = turntable
        self._supersample = supersample
        self.resolution = (scene.intrinsics.width, scene.intrinsics.height)

    def capture(self, path: Path, exif: dict[str, Any] | None = None,
                quality: int | None = None) -> CaptureInfo:
        frame = self.scene.render(None, self._turntable.angle_deg, self.resolution,
                                  supersample=self._supersample)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, quality or 90])
        assert ok
        Path(path).write_bytes(buf.tobytes())
        return CaptureInfo(Path(path), *self.resolution)

    def close(self) -> None:
        pass


def _rig(scene: MockScene, supersample: int = 1) -> Rig:
    turntable = MockTurntable(seconds_per_rev=0)
    return Rig("mock", SceneCamera(scene, turntable, supersample), turntable, MockLight())


def _assert_recovers(cal: Calibration, scene: MockScene) -> None:
    true_i, true_g = scene.intrinsics, scene.geometry
    assert cal.intrinsics.fx == pytest.approx(true_i.fx, rel=0.005)
    assert cal.intrinsics.fy == pytest.approx(true_i.fy, rel=0.005)
    assert cal.geometry.distance_m == pytest.approx(true_g.distance_m, rel=0.01)
    assert abs(cal.geometry.elevation_deg - true_g.elevation_deg) < 0.3
    assert cal.geometry.height_m == pytest.approx(true_g.height_m, abs=0.002)
    # The whole pose, not only its summary numbers: within a few mm and a tenth of a degree.
    for angle in (0.0, 137.0):
        est, truth = cal.pose(None, angle), scene.pose(None, angle)
        assert np.linalg.norm(est.centre - truth.centre) < 0.003
        cos = (np.trace(est.R @ truth.R.T) - 1) / 2
        assert math.degrees(math.acos(min(1.0, cos))) < 0.1
    assert 0 < cal.rms_px < 0.5
    assert 0 < cal.focal_sigma_px < 0.004 * cal.intrinsics.fx


def test_calibrating_the_mock_rig_recovers_its_camera(tmp_path: Path) -> None:
    scene = MockScene()
    rig = _rig(scene, supersample=2)
    progress: list[tuple[int, int]] = []
    cal = run_calibration(rig, tmp_path / "calib", views=12,
                          on_progress=lambda i, n: progress.append((i, n)))
    print(f"\nf {cal.intrinsics.fx:.2f} px (true 1100), distance {cal.geometry.distance_m:.5f} m,"
          f" elevation {cal.geometry.elevation_deg:.4f} deg, rms {cal.rms_px:.3f} px")
    _assert_recovers(cal, scene)
    assert progress[-1] == (12, 12) and len(list((tmp_path / "calib").glob("*.jpg"))) == 12
    assert cal.views_used == 12 and cal.angles_deg[3] == pytest.approx(90.0)
    assert scene.content == "object"  # the board is put away again


def test_a_steeper_rig_with_lens_distortion_is_recovered_too() -> None:
    lens = Intrinsics(1020.0, 1020.0, 639.5, 479.5, 1280, 960, (-0.08, 0.03, 0.0, 0.0, 0.0))
    scene = MockScene(lens, RigGeometry.from_elevation(0.30, 38.0, 0.03))
    angles = [7.0 + 36.0 * i for i in range(10)]
    images = [scene.render_board(None, a, supersample=1) for a in angles]
    cal = solve_calibration(images, angles, scene.board)
    _assert_recovers(cal, scene)
    assert cal.intrinsics.distortion[0] < -0.03  # barrel distortion seen as barrel


def test_board_missing_from_too_many_photos_is_one_sentence(tmp_path: Path) -> None:
    scene = MockScene()
    angles = [0.0, 60.0, 120.0, 180.0, 240.0, 300.0]
    images = [scene.render(None, a, (640, 480), content="board" if i < 3 else "empty").rgb
              for i, a in enumerate(angles)]
    with pytest.raises(CalibrationError) as err:
        solve_calibration(images, angles, scene.board)
    message = str(err.value)
    assert message.startswith("The calibration board was not found in 3 of 6 photos:")
    assert message.count(".") == 1 and "\n" not in message
    rig = _rig(scene)
    scene.content = "empty"  # someone forgot the board: calibrate sets "board" itself...
    cal = run_calibration(rig, tmp_path, views=6)
    assert cal.views_used == 6
    assert scene.content == "empty"  # ...and leaves the scene as it found it


def test_calibration_saves_and_loads_atomically_as_json(tmp_path: Path) -> None:
    cal = Calibration(
        intrinsics=Intrinsics(1101.5, 1101.5, 639.5, 479.5, 1280, 960, (0.01, -0.02, 0, 0, 0)),
        geometry=RigGeometry.from_elevation(0.351, 19.9, 0.044, 0.1, -0.2),
        rms_px=0.12, board=MockScene().board, angles_deg=(0.0, 30.0), views_used=2,
    )
    path = save_calibration(cal, tmp_path / "rig" / "calibration.json")
    assert not [p for p in path.parent.iterdir() if p.name != "calibration.json"]
    data = json.loads(path.read_text())
    assert data["geometry"]["elevation_deg"] == pytest.approx(19.9)
    assert data["id"] == cal.id and data["created_at"].endswith("+00:00")
    back = load_calibration(path)
    assert back == cal
    assert back.pose(30.0, 45.0).R == pytest.approx(cal.pose(30.0, 45.0).R)
    assert back.intrinsics_for((640, 480)).fx == pytest.approx(1101.5 / 2)
    path.write_text("{not json")
    with pytest.raises(CalibrationError, match="run `scanner hal calibrate` again"):
        load_calibration(path)


def test_a_board_that_slid_or_a_platter_that_slipped_is_refused() -> None:
    scene = MockScene()
    angles = [0.0, 45.0, 90.0, 135.0, 180.0, 225.0]
    images = [scene.render_board(None, a, (640, 480), supersample=1) for a in angles]
    told = list(angles)
    told[2], told[4] = told[4], told[2]  # the turntable was not where it said
    with pytest.raises(CalibrationError, match=r"^The photos do not fit one camera"):
        solve_calibration(images, told, scene.board)
    assert solve_calibration(images, angles, scene.board).rms_px < 0.5


def test_calibrating_through_the_real_mock_camera_and_turntable(tmp_path: Path) -> None:
    """The real MockCamera renders the scene it is given at the platter's true angle."""
    from hal.mock.camera import MockCamera

    scene = MockScene()
    turntable = MockTurntable(seconds_per_rev=0)
    camera = MockCamera(resolution=(1280, 960), capture_seconds=0,
                        angle_source=turntable.platter.true_angle, scene=scene)
    rig = Rig("mock", camera, turntable, MockLight())
    camera.lock_exposure()
    cal = run_calibration(rig, tmp_path, views=8)
    _assert_recovers(cal, scene)


def test_a_camera_looking_down_too_steeply_is_told_to_calibrate_lower() -> None:
    # Seen nearly face-on, a flat board cannot tell focal length from distance.
    scene = MockScene(geometry=RigGeometry.from_elevation(0.35, 72.0, 0.045))
    angles = [30.0 * i for i in range(8)]
    images = [scene.render_board(None, a, supersample=1) for a in angles]
    with pytest.raises(CalibrationError, match=r"too steeply \(72 degrees\).*between 10 and 50"):
        solve_calibration(images, angles, scene.board)
