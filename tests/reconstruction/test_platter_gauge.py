"""The platter's rim fixes the scale and height that photos of the object cannot show
(issue 13: refined poses within 1 mm when the calibration is off by 2 degrees and 5 mm).
Real mock renders at 640x480: 3 rings x 8 frames."""

from __future__ import annotations

import pytest

from hal.mock.scene import PLATTER_RADIUS_M, MockScene
from scanner_app.reconstruction import platter_gauge, sfm
from scanner_app.reconstruction.frames import FrameInput
from scanner_app.reconstruction.pipeline import reconstruct
from scanner_app.reconstruction.rig_fit import gauge_transform
from tests.conftest import IN_CI

SIZE = (640, 480)


def _frames(backdrop: str) -> list[FrameInput]:
    scene = MockScene(backdrop=backdrop)
    intrinsics = scene.intrinsics_for(SIZE)
    frames = []
    for ring, elevation in enumerate((10.0, 30.0, 50.0)):
        for k in range(8):
            angle = 45.0 * k
            view = scene.render(elevation, angle, SIZE)
            frames.append(FrameInput(f"f{ring}_{k}.jpg", intrinsics,
                                     scene.pose(elevation, angle), ring=ring, angle_deg=angle,
                                     rgb_array=view.rgb, mask_array=view.mask))
    return frames


def _moved(frames: list[FrameInput], scale: float, lift: float) -> list[FrameInput]:
    return [FrameInput(f.name, f.intrinsics, gauge_transform(f.pose, 0.0, lift, scale),
                       ring=f.ring, angle_deg=f.angle_deg, rgb_array=f.rgb_array,
                       mask_array=f.mask_array) for f in frames]


def _worst_mm(frames: list[FrameInput], truth: list[FrameInput]) -> float:
    return max(1000 * sfm.pose_difference(f.pose, t.pose)[1]
               for f, t in zip(frames, truth, strict=True))


@pytest.mark.parametrize(("scale", "lift"), [(1.0032, -0.0054), (0.985, 0.008)])
def test_rim_brings_scale_and_height_back_within_1_mm(scale: float, lift: float) -> None:
    truth = _frames("studio")
    wrong = _moved(truth, scale, lift)
    assert _worst_mm(wrong, truth) > 4.0
    gauge = platter_gauge.fit(wrong, PLATTER_RADIUS_M)
    assert gauge is not None
    assert _worst_mm(platter_gauge.apply(wrong, gauge), truth) < 1.0


def test_no_rim_keeps_the_calibrations_gauge() -> None:
    """A plain platter on a backdrop of its own colour shows no rim: nothing is changed."""
    truth = _frames("uniform")
    wrong = _moved(truth, 1.0032, -0.0054)
    assert platter_gauge.fit(wrong, PLATTER_RADIUS_M) is None
    assert platter_gauge.apply(wrong, None) == wrong


@pytest.mark.skipif(not sfm.available() and not IN_CI,  # CI: missing = fail
                    reason="pycolmap is not installed (no wheel here)")
def test_the_pipeline_takes_scale_and_height_from_the_rim(tmp_path) -> None:
    """A scan whose calibration is off by 2 degrees and 5 mm: the refined poses the pipeline
    writes (colmap/) are near the truth without any help from the truth."""
    from tests.reconstruction.mock_frames import mock_frames
    from tests.reconstruction.test_pipeline_refine import colmap_poses, miscalibrated, worst

    truth_frames = mock_frames(size=SIZE, rings=(10.0, 35.0), per_ring=24)
    noisy = miscalibrated(truth_frames)
    truth = {f.name: f.pose for f in truth_frames}
    _, before_mm = worst({f.name: f.pose for f in noisy}, truth)
    out = tmp_path / "out"
    out.mkdir()
    metrics = reconstruct(noisy, out, tmp_path / "work", use_colmap=True, resolution=96)
    deg, mm = worst(colmap_poses(out / "colmap"), truth)
    print(f"\nraw worst frame: perturbed {before_mm:.2f} mm -> refined {deg:.3f} deg "
          f"{mm:.2f} mm; gauge {metrics['platter_gauge']}")
    assert metrics["platter_gauge"] is not None and "platter_note" not in metrics
    assert before_mm > 4.5
    # 640x480 and 2 rings leave about 0.5 deg of rotation error, which the rim turns into
    # 1-2 mm of height (the benchmark's 1280x960, 3 rings: 0.14 deg, 1.25 mm); 5 mm without.
    assert mm < 3.5
