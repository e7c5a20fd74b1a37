"""Object-frame camera poses and their COLMAP / nerfstudio spellings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hal.geometry import (
    Intrinsics,
    Pose,
    RigGeometry,
    camera_pose,
    colmap_camera,
    colmap_cameras_line,
    colmap_image_pose,
    colmap_images_lines,
    distort_normalised,
    geometry_from_pose,
    nerfstudio_camera,
    nerfstudio_frame,
    nerfstudio_transform,
    project,
    qvec_to_rotation,
    rot_z,
    rotation_to_qvec,
    undistort_normalised,
)

INTR = Intrinsics(1100.0, 1100.0, 639.5, 479.5, 1280, 960)
GEOM = RigGeometry.from_elevation(0.35, 20.0, 0.045)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q @ np.diag(np.sign(np.diag(r)))
    return q if np.linalg.det(q) > 0 else -q


def test_camera_at_angle_zero_stands_on_minus_y_looking_at_the_axis() -> None:
    pose = camera_pose(GEOM, None, 0.0)
    c = pose.centre
    assert c == pytest.approx([0.0, -0.35, 0.045 + 0.35 * math.tan(math.radians(20))], abs=1e-12)
    # The look-at point on the axis projects onto the principal point.
    uv = project(INTR, pose, np.array([[0.0, 0.0, 0.045]]))[0]
    assert uv == pytest.approx([INTR.cx, INTR.cy], abs=1e-9)
    # Image x is +X, image up is +Z (OpenCV: y grows downwards).
    right = project(INTR, pose, np.array([[0.01, 0.0, 0.045]]))[0]
    up = project(INTR, pose, np.array([[0.0, 0.0, 0.055]]))[0]
    assert right[0] > INTR.cx + 20 and abs(right[1] - INTR.cy) < 1e-6
    assert up[1] < INTR.cy - 20 and abs(up[0] - INTR.cx) < 1e-6
    assert np.linalg.det(pose.R) == pytest.approx(1.0)


@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0, 181.5, 300.0])
def test_turning_the_platter_by_theta_orbits_the_camera_by_minus_theta(angle: float) -> None:
    c0 = camera_pose(GEOM, None, 0.0).centre
    c = camera_pose(GEOM, None, angle).centre
    assert c == pytest.approx(rot_z(math.radians(-angle)) @ c0, abs=1e-12)
    # Same distance and height all round: the orbit is about Z.
    assert math.hypot(c[0], c[1]) == pytest.approx(0.35)
    assert c[2] == pytest.approx(c0[2])


def test_quarter_turn_counter_clockwise_shows_the_minus_x_side() -> None:
    # Platter +90 deg (counter-clockwise from above): the object's -X side faces the camera.
    c = camera_pose(GEOM, None, 90.0).centre
    assert c[0] == pytest.approx(-0.35) and abs(c[1]) < 1e-12
    # A point on the object's -X side is nearer the camera than one on the +X side.
    pose = camera_pose(GEOM, None, 90.0)
    near = (pose.R @ [-0.03, 0, 0.045] + pose.t)[2]
    far = (pose.R @ [0.03, 0, 0.045] + pose.t)[2]
    assert near < far


def test_a_fixed_lab_point_seen_at_theta_is_the_object_point_turned_by_theta() -> None:
    # Object point X at platter angle θ is at Rz(θ) X in the lab: same pixel as the lab
    # point seen at angle 0.
    x = np.array([[0.02, -0.01, 0.03]])
    for angle in (15.0, 100.0, 250.0):
        lab = (rot_z(math.radians(angle)) @ x[0])[None]
        assert project(INTR, camera_pose(GEOM, None, angle), x) == pytest.approx(
            project(INTR, camera_pose(GEOM, None, 0.0), lab), abs=1e-9)


def test_elevation_moves_the_camera_on_an_arc_about_the_look_at_point() -> None:
    for elev in (0.0, 10.0, 35.0, 60.0):
        g = GEOM.at_elevation(elev)
        assert g.elevation_deg == pytest.approx(elev)
        assert g.arm_radius_m == pytest.approx(GEOM.arm_radius_m)
        assert g.target_height_m == GEOM.target_height_m
        pose = camera_pose(GEOM, elev, 0.0)
        assert pose.centre[2] - 0.045 == pytest.approx(GEOM.arm_radius_m
                                                        * math.sin(math.radians(elev)))
        # Still aimed at the pivot.
        uv = project(INTR, pose, np.array([[0.0, 0.0, 0.045]]))[0]
        assert uv == pytest.approx([INTR.cx, INTR.cy], abs=1e-9)
    assert camera_pose(GEOM, 20.0, 40.0).R == pytest.approx(camera_pose(GEOM, None, 40.0).R)


def test_geometry_round_trips_through_a_pose_with_pan_and_roll() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        g = RigGeometry.from_elevation(rng.uniform(0.2, 0.6), rng.uniform(-5, 70),
                                       rng.uniform(0.0, 0.1), rng.uniform(-3, 3),
                                       rng.uniform(-3, 3))
        pose = camera_pose(g, None, 0.0)
        back = geometry_from_pose(pose.R, pose.t)
        for name in ("distance_m", "height_m", "target_height_m", "pan_deg", "roll_deg"):
            assert getattr(back, name) == pytest.approx(getattr(g, name), abs=1e-9)
        assert RigGeometry.from_dict(g.to_dict()) == g


def test_qvec_round_trip_and_colmap_image_pose() -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        r = _random_rotation(rng)
        q = rotation_to_qvec(r)
        assert q[0] >= 0 and np.linalg.norm(q) == pytest.approx(1.0)
        assert qvec_to_rotation(q) == pytest.approx(r, abs=1e-12)
    assert rotation_to_qvec(np.eye(3)) == pytest.approx([1, 0, 0, 0])
    # 90 deg about z: w = cos 45, z = sin 45 (Hamilton, as COLMAP).
    assert rotation_to_qvec(rot_z(math.pi / 2)) == pytest.approx(
        [math.sqrt(0.5), 0, 0, math.sqrt(0.5)])
    pose = camera_pose(GEOM, 35.0, 123.0)
    q, t = colmap_image_pose(pose)
    assert qvec_to_rotation(q) == pytest.approx(pose.R, abs=1e-12)
    assert t == pytest.approx(pose.t)


def test_nerfstudio_transform_is_camera_to_world_with_opengl_axes() -> None:
    pose = camera_pose(GEOM, 30.0, 45.0)
    m = np.array(nerfstudio_transform(pose))
    assert m[:3, 3] == pytest.approx(pose.centre)
    forward = -m[:3, 2]  # OpenGL cameras look down their -z
    to_target = np.array([0, 0, 0.045]) - pose.centre
    assert forward == pytest.approx(to_target / np.linalg.norm(to_target))
    assert m[:3, 1] @ [0, 0, 1] > 0.8  # camera up is roughly world up
    w2c = np.linalg.inv(m)
    assert np.diag([1, -1, -1]) @ w2c[:3, :3] == pytest.approx(pose.R)
    assert isinstance(Pose(pose.R, pose.t).camera_to_world, np.ndarray)
    frame = nerfstudio_frame("images/f1.jpg", pose, "masks/f1.png", ring=1)
    assert frame["mask_path"] == "masks/f1.png" and frame["ring"] == 1
    assert np.array(frame["transform_matrix"]) == pytest.approx(m)


def test_camera_models_shift_the_principal_point_by_half_a_pixel() -> None:
    assert colmap_camera(INTR) == ("PINHOLE", [1100.0, 1100.0, 640.0, 480.0])
    lens = Intrinsics(1000, 1001, 300.25, 200.75, 640, 480, (-0.1, 0.02, 0.001, -0.002, 0.0))
    model, params = colmap_camera(lens)
    assert model == "OPENCV" and params == [1000, 1001, 300.75, 201.25, -0.1, 0.02, 0.001, -0.002]
    cam = nerfstudio_camera(lens)
    assert (cam["cx"], cam["cy"], cam["w"], cam["h"]) == (300.75, 201.25, 640, 480)
    assert (cam["k1"], cam["p2"]) == (-0.1, -0.002)


def test_intrinsics_scale_with_the_output_size_and_round_trip() -> None:
    half = INTR.scaled(640, 480)
    assert (half.fx, half.cx, half.cy) == (550.0, 319.5, 239.5)
    assert half.scaled(1280, 960) == INTR
    assert Intrinsics.from_dict(INTR.to_dict()) == INTR
    # The same ray lands on the same spot of the sensor at both sizes.
    pts = np.array([[0.03, 0.01, 0.05]])
    pose = camera_pose(GEOM, None, 10.0)
    full, small = project(INTR, pose, pts)[0], project(half, pose, pts)[0]
    assert (small + 0.5) * 2 == pytest.approx(full + 0.5)


def test_undistort_inverts_distort() -> None:
    rng = np.random.default_rng(5)
    x, y = rng.uniform(-0.6, 0.6, 500), rng.uniform(-0.45, 0.45, 500)
    dist = (-0.12, 0.05, 0.001, -0.0015, 0.0)
    xd, yd = distort_normalised(x, y, dist)
    ux, uy = undistort_normalised(xd, yd, dist)
    assert np.max(np.abs(ux - x)) < 1e-10 and np.max(np.abs(uy - y)) < 1e-10


def test_colmap_text_lines_carry_full_precision() -> None:
    assert colmap_cameras_line(1, INTR) == "1 PINHOLE 1280 960 1100.0 1100.0 640.0 480.0"
    pose = camera_pose(GEOM, 35.0, 123.456)
    text = colmap_images_lines(7, pose, 1, "ring1/frame_007.jpg")
    first, second, rest = text.split("\n")
    assert second == "" and rest == ""
    fields = first.split()
    assert fields[0] == "7" and fields[8:] == ["1", "ring1/frame_007.jpg"]
    q, t = np.array(fields[1:5], float), np.array(fields[5:8], float)
    assert np.max(np.abs(qvec_to_rotation(q) - pose.R)) < 1e-12
    assert np.max(np.abs(t - pose.t)) < 1e-15
