"""Pose refinement on the mock rig's ground truth: a scan whose calibration is wrong by 2° and
5 mm (one camera error shared by every frame, as a miscalibrated rig gives) comes out of the
pipeline with poses much nearer the truth, built into the model, with every output the issue
names; without pycolmap the hull is built from the known poses and the report says why."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import trimesh

from hal.geometry import Pose
from hal.mock.scene import object_mesh
from scanner_app.reconstruction import sfm
from scanner_app.reconstruction.frames import FrameInput
from scanner_app.reconstruction.pipeline import NO_COLMAP_NOTE, reconstruct
from scanner_app.reconstruction.rig_fit import align_gauge, gauge_transform
from scanner_app.reconstruction.surface import as_mesh, surface_distance
from tests.conftest import IN_CI
from tests.reconstruction.mock_frames import mock_frames

needs_colmap = pytest.mark.skipif(not sfm.available() and not IN_CI,  # CI: missing = fail
                                  reason="pycolmap is not installed (no wheel here)")
SIZE = (640, 480)  # small enough for a test, large enough for SIFT on the mug


def miscalibrated(frames: list[FrameInput], degrees: float = 2.0,
                  metres: float = 0.005, seed: int = 13) -> list[FrameInput]:
    """Every frame's pose with the same camera error: turned by `degrees` about a random
    axis and moved by `metres`, in camera coordinates."""
    rng = np.random.default_rng(seed)
    axis = rng.normal(size=3)
    turn, _ = cv2.Rodrigues(axis / np.linalg.norm(axis) * math.radians(degrees))
    step = rng.normal(size=3)
    step = step / np.linalg.norm(step) * metres
    return [FrameInput(f.name, f.intrinsics, Pose(turn @ f.pose.R, turn @ f.pose.t + step),
                       ring=f.ring, angle_deg=f.angle_deg, rgb_array=f.rgb_array,
                       mask_array=f.mask_array) for f in frames]


def worst(poses: dict[str, Pose], truth: dict[str, Pose]) -> tuple[float, float]:
    errors = [sfm.pose_difference(p, truth[n]) for n, p in poses.items()]
    return max(a for a, _ in errors), 1000 * max(m for _, m in errors)


def colmap_poses(folder: Path) -> dict[str, Pose]:
    import pycolmap

    model = pycolmap.Reconstruction(str(folder))
    poses = {}
    for image in model.images.values():
        matrix = image.cam_from_world().matrix()
        poses[image.name] = Pose(np.asarray(matrix[:, :3]), np.asarray(matrix[:, 3]))
    return poses


@pytest.fixture(scope="module")
def truth_frames() -> list[FrameInput]:
    return mock_frames(size=SIZE, rings=(10.0, 35.0), per_ring=24)


@pytest.fixture(scope="module")
def refined_run(truth_frames, tmp_path_factory) -> tuple[Path, dict, list[FrameInput]]:
    if not sfm.available() and not IN_CI:  # CI: missing = fail
        pytest.skip("pycolmap is not installed (no wheel here)")
    root = tmp_path_factory.mktemp("refined")
    out = root / "out"
    out.mkdir()
    noisy = miscalibrated(truth_frames)
    metrics = reconstruct(noisy, out, root / "work", use_colmap=True, resolution=128)
    return out, metrics, noisy


@needs_colmap
def test_refinement_brings_a_miscalibrated_scan_near_the_true_poses(truth_frames,
                                                                    refined_run) -> None:
    out, _metrics, noisy = refined_run
    truth = {f.name: f.pose for f in truth_frames}
    refined = colmap_poses(out / "colmap")
    assert set(refined) == set(truth)
    before_deg, before_mm = worst(align_gauge({f.name: f.pose for f in noisy}, truth), truth)
    after_deg, after_mm = worst(align_gauge(refined, truth), truth)
    raw_before_deg, _ = worst({f.name: f.pose for f in noisy}, truth)
    raw_after_deg, _ = worst(refined, truth)
    print(f"\nworst frame, gauge from the truth: {before_deg:.3f} deg {before_mm:.2f} mm "
          f"perturbed -> {after_deg:.3f} deg {after_mm:.2f} mm refined; raw rotation "
          f"{raw_before_deg:.3f} -> {raw_after_deg:.3f} deg")
    # At 640x480 with 2 rings of 24 the mock gives about 0.5 deg from 2 (the benchmark's
    # 1280x960 and 3 rings: 0.11 deg): well under half the error is a meaningful bound here.
    assert before_deg > 1.5
    assert after_deg < 0.4 * before_deg
    # Positions: the perturbation's 5 mm lies mostly along what photos cannot show (about
    # 1.2 mm is left once those are taken from the truth); the refinement must not add to it.
    assert after_mm < before_mm
    assert raw_after_deg < 0.4 * raw_before_deg


@needs_colmap
def test_the_refined_run_writes_every_output_and_a_report(refined_run) -> None:
    out, metrics, noisy = refined_run
    for name in ("model.glb", "sparse.ply", "report.json", "colmap/cameras.txt",
                 "colmap/images.txt", "colmap/points3D.txt"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    report = json.loads((out / "report.json").read_text())
    assert report == json.loads(json.dumps(metrics))
    assert report["refined"] is True and report["refined_poses_used"] is True
    assert report["registered_frames"] == len(noisy) and report["unregistered"] == []
    assert 0 < report["reprojection_error_px"] < 1.5
    corrections = report["pose_corrections"]
    assert set(corrections["per_frame"]) == {f.name for f in noisy}
    # The perturbation was 2 degrees: the refinement moved every frame by about that much.
    assert 1.0 < corrections["max_rotation_deg"] < 3.0
    assert set(report["seconds"]) >= {"features", "matching", "triangulation",
                                      "bundle adjustment", "visual hull", "colour", "total"}
    sparse = trimesh.load(out / "sparse.ply")
    assert len(sparse.vertices) == report["sparse_points"] > 100
    # The points are coloured from the whole photos (SIFT saw crops): like the object.
    object_pixels = np.concatenate([f.rgb_array[f.mask_array] for f in noisy])
    point_colours = np.asarray(sparse.colors)[:, :3].astype(float)
    assert np.abs(point_colours.mean(axis=0) - object_pixels.mean(axis=0)).max() < 25


@needs_colmap
def test_the_model_from_refined_poses_beats_the_one_from_the_miscalibrated_poses(
        refined_run, tmp_path: Path) -> None:
    out, _metrics, noisy = refined_run
    known = tmp_path / "known"
    known.mkdir()
    reconstruct(noisy, known, tmp_path / "work", use_colmap=False, resolution=128)
    truth = as_mesh(object_mesh())
    refined_distance = surface_distance(as_mesh(trimesh.load(out / "model.glb")), truth,
                                        count=2000, dense=100_000)
    known_distance = surface_distance(as_mesh(trimesh.load(known / "model.glb")), truth,
                                      count=2000, dense=100_000)
    print(f"\nvs the true mesh, mean: refined poses {refined_distance.mean_pct:.3f} %, "
          f"miscalibrated poses {known_distance.mean_pct:.3f} %")
    assert refined_distance.mean_pct < 0.8 * known_distance.mean_pct


def test_gauge_alignment_undoes_exactly_a_turn_a_lift_and_a_scale(truth_frames) -> None:
    truth = {f.name: f.pose for f in truth_frames}
    moved = {n: gauge_transform(p, math.radians(7.0), 0.01, 1.03) for n, p in truth.items()}
    assert worst(moved, truth)[1] > 5.0
    deg, mm = worst(align_gauge(moved, truth), truth)
    assert deg < 1e-4 and mm < 1e-4


def test_without_pycolmap_the_hull_is_built_from_known_poses_and_the_report_says_so(
        truth_frames, tmp_path: Path, monkeypatch) -> None:
    # What a Raspberry Pi sees: importing pycolmap fails.
    monkeypatch.setitem(sys.modules, "pycolmap", None)
    assert not sfm.available()
    out = tmp_path / "out"
    out.mkdir()
    metrics = reconstruct(truth_frames, out, tmp_path / "work", resolution=96)
    report = json.loads((out / "report.json").read_text())
    assert report["refined"] is False and metrics["refined"] is False
    assert report["note"] == NO_COLMAP_NOTE
    assert "processing worker on a PC" in report["note"]
    assert report["outputs"] == ["model.glb", "report.json"]
    assert (out / "model.glb").is_file() and not (out / "sparse.ply").exists()


def test_crop_boxes_hold_every_object_at_one_size_or_are_skipped_without_masks(
        truth_frames) -> None:
    boxes = sfm._crop_boxes(truth_frames)
    assert boxes is not None
    assert len({(w, h) for _x, _y, w, h in boxes.values()}) == 1  # one camera, one size
    for f in truth_frames:
        x, y, w, h = boxes[f.name]
        height, width = f.mask_array.shape
        assert 0 <= x and 0 <= y and x + w <= width and y + h <= height
        inside = np.zeros_like(f.mask_array)
        inside[y:y + h, x:x + w] = True
        assert not (f.mask_array & ~inside).any()  # nothing of the object cut off
        assert w * h < 0.5 * width * height  # and the crop is what saves the time
    bare = [FrameInput(f.name, f.intrinsics, f.pose, rgb_array=f.rgb_array)
            for f in truth_frames[:1]] + truth_frames[1:]
    assert sfm._crop_boxes(bare) is None  # a frame without a mask: whole frames
