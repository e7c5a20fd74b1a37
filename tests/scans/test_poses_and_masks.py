"""Poses and masks of the scans slice on the real mock rig, in this process: the nominal camera
model of the mock is its true scene; a calibration replaces it (and a resume keeps the same
calibration by id); plates are taken once per set-up and reused; each mask matches the
renderer's exact mask."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from hal.calibration import Calibration
from hal.calibration_board import BoardSpec
from hal.geometry import RigGeometry, qvec_to_rotation
from hal.masks import mask_iou, read_mask
from hal.mock.rig import build_rig
from hal.mock.scene import MockScene
from hal.settings import HalSettings
from scanner_app.scans.calibrations import save_rig_calibration
from scanner_app.scans.plates import FrameMasks, Plates, read_for_mask, write_frame_mask
from scanner_app.scans.poses import camera_model, pose_entry

SIZE = (480, 360)


@pytest.fixture
def rig(data_dir: Path):
    settings = HalSettings.from_mapping({
        "data_dir": str(data_dir), "tilt": {"driver": "step_dir"},
        "mock": {"capture_seconds": 0, "seconds_per_rev": 0, "resolution": list(SIZE)}})
    with build_rig(settings) as rig:
        rig.camera.lock_exposure()
        yield rig


def test_nominal_poses_on_the_mock_are_its_true_poses(rig, data_dir: Path) -> None:
    model = camera_model(data_dir, rig.describe()["camera"], SIZE)
    assert model.nominal and "no calibration" in model.note
    scene = MockScene()
    for elevation, angle in ((10, 0), (35, 123.4), (55, 300)):
        truth, pose = scene.pose(elevation, angle), model.pose(elevation, angle)
        assert np.abs(pose.R - truth.R).max() < 1e-12 and np.abs(pose.t - truth.t).max() < 1e-12
        entry = pose_entry(pose)
        assert np.abs(qvec_to_rotation(entry["qvec"]) - truth.R).max() < 1e-9
    assert model.intrinsics_for(SIZE) == scene.intrinsics_for(SIZE)


def test_a_calibration_replaces_nominal_poses_and_is_kept_by_id(rig, data_dir: Path) -> None:
    scene = MockScene()
    first = Calibration(scene.intrinsics, RigGeometry.from_elevation(0.36, 21.0, 0.045), 0.2,
                        BoardSpec())
    save_rig_calibration(data_dir, first)
    model = camera_model(data_dir, rig.describe()["camera"], SIZE)
    assert not model.nominal and model.calibration_id == first.id
    assert model.elevation_of(None) == pytest.approx(21.0)
    later = Calibration(scene.intrinsics, RigGeometry.from_elevation(0.30, 25.0, 0.04), 0.3,
                        BoardSpec())
    save_rig_calibration(data_dir, later)
    # A resumed scan keeps the calibration it started with; a new one takes the current.
    assert camera_model(data_dir, {}, SIZE, first.id).geometry == first.geometry
    assert camera_model(data_dir, {}, SIZE).calibration_id == later.id


def test_plates_are_taken_once_and_masks_match_the_renderer(rig, data_dir: Path,
                                                            tmp_path: Path) -> None:
    model = camera_model(data_dir, rig.describe()["camera"], SIZE)
    plates = Plates(data_dir, model, SIZE)
    scene = rig.camera.scene
    images = tmp_path / "images"
    images.mkdir()
    for elevation in (10.0, 40.0):
        rig.tilt.move_to(elevation)
        assert plates.plate(elevation) is None
        rig.turntable.move_to(0)
        plate = plates.take(rig, elevation)
        assert plates.plate(elevation) == plate  # kept for the next scan of this set-up
        assert scene.content == "object"  # the object is back for the frames
        for angle in (0.0, 75.0, 200.0):
            rig.turntable.move_to(angle)
            frame = images / f"e{elevation:g}_a{angle:g}.jpg"
            rig.camera.capture(frame)
            written = write_frame_mask(frame, images, model, elevation, angle, plate)
            exact = scene.render(elevation, angle, SIZE).mask
            assert mask_iou(read_mask(written), exact) >= 0.95
    # Another photo size is another set-up: its plates are its own.
    assert Plates(data_dir, model, (640, 480)).plate(10.0) is None


def test_large_frames_are_masked_at_a_smaller_size_and_scaled_up(data_dir: Path,
                                                                 tmp_path: Path) -> None:
    size = (2028, 1521)
    settings = HalSettings.from_mapping({
        "data_dir": str(data_dir),
        "mock": {"capture_seconds": 0, "seconds_per_rev": 0, "resolution": list(size)}})
    with build_rig(settings) as rig:
        rig.camera.lock_exposure()
        model = camera_model(data_dir, rig.describe()["camera"], size)
        plate = Plates(data_dir, model, size).take(rig, 20.0)
        rig.turntable.move_to(40)
        frame = tmp_path / "frame_0000.jpg"
        rig.camera.capture(frame)
        written = write_frame_mask(frame, tmp_path, model, 20.0, 40.0, plate)
        mask = read_mask(written)
        assert mask.shape == (size[1], size[0])
        assert mask_iou(mask, rig.camera.scene.render(20.0, 40.0, size).mask) >= 0.95


def test_a_scans_masks_keep_the_rings_plate_prepared_until_it_changes(rig, data_dir: Path,
                                                                      tmp_path: Path) -> None:
    # FrameMasks (one per scan run) keeps the last ring's plate prepared; its masks must be
    # the one-shot ones, ring after ring, and a plate taken again must be used at once.
    model = camera_model(data_dir, rig.describe()["camera"], SIZE)
    plates = Plates(data_dir, model, SIZE)
    taken = {}
    for elevation in (10.0, 40.0):
        rig.tilt.move_to(elevation)
        rig.turntable.move_to(0)
        taken[elevation] = plates.take(rig, elevation)
    masks, alone, images = FrameMasks(), tmp_path / "alone", tmp_path / "images"
    images.mkdir()
    for n, (elevation, angle) in enumerate(((10.0, 30.0), (10.0, 95.0), (40.0, 95.0),
                                            (10.0, 250.0))):
        rig.tilt.move_to(elevation)
        rig.turntable.move_to(angle)
        frame = images / f"frame_{n:04d}.jpg"
        rig.camera.capture(frame)
        mask = read_mask(masks.write(frame, images, model, elevation, angle, taken[elevation]))
        one_shot = write_frame_mask(frame, alone, model, elevation, angle, taken[elevation])
        assert np.array_equal(mask, read_mask(one_shot))
        assert mask_iou(mask, rig.camera.scene.render(elevation, angle, SIZE).mask) >= 0.95
    # The ring-10 plate taken again, with the object on it (a frame at the plate's angle):
    # a frame the same as its plate shows nothing.
    rig.turntable.move_to(0)
    frame = images / "frame_0004.jpg"
    rig.camera.capture(frame)
    taken[10.0][0].write_bytes(frame.read_bytes())
    mask = read_mask(masks.write(frame, images, model, 10.0, 0.0, taken[10.0]))
    assert np.array_equal(mask, read_mask(write_frame_mask(frame, alone, model, 10.0, 0.0,
                                                           taken[10.0])))
    assert not mask.any()


def test_large_jpegs_are_decoded_small_for_their_masks(data_dir: Path, tmp_path: Path) -> None:
    # A frame at least twice MASK_MAX_WIDTH wide is decoded at 1/2 (1/4, 1/8) scale straight
    # away; its mask is still written at the frame's own size and matches the renderer.
    size = (2600, 1950)
    settings = HalSettings.from_mapping({
        "data_dir": str(data_dir),
        "mock": {"capture_seconds": 0, "seconds_per_rev": 0, "resolution": list(size)}})
    with build_rig(settings) as rig:
        rig.camera.lock_exposure()
        model = camera_model(data_dir, rig.describe()["camera"], size)
        plate = Plates(data_dir, model, size).take(rig, 20.0)
        rig.turntable.move_to(140)
        frame = tmp_path / "frame_0000.jpg"
        rig.camera.capture(frame)
        img, full = read_for_mask(frame)
        assert full == size and img.shape == (960, 1280, 3)
        whole = cv2.resize(cv2.imread(str(frame)), (1280, 960), interpolation=cv2.INTER_AREA)
        assert np.abs(img.astype(int) - whole).mean() < 2.0  # the same picture
        mask = read_mask(write_frame_mask(frame, tmp_path, model, 20.0, 140.0, plate))
        assert mask.shape == (size[1], size[0])
        assert mask_iou(mask, rig.camera.scene.render(20.0, 140.0, size).mask) >= 0.95


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_a_photo_read_for_its_mask_keeps_its_size_as_opencv_turns_it(tmp_path: Path,
                                                                     suffix: str) -> None:
    from PIL import Image

    stored = np.zeros((1000, 2600, 3), np.uint8)
    stored[:, :1300] = (0, 0, 255)
    path = tmp_path / f"turned{suffix}"
    exif = Image.Exif()
    exif[0x0112] = 6  # turned a quarter: OpenCV shows it 1000 wide, 2600 high
    Image.fromarray(stored).save(path, exif=exif)
    img, full = read_for_mask(path)
    whole = cv2.imread(str(path))
    assert full == (whole.shape[1], whole.shape[0])
    assert img.shape[1] == min(full[0], 1280)
