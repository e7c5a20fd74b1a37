"""Object masks from background plates (and the uniform-backdrop fallback) against the
renderer's exact masks."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from hal import masks
from hal.masks import (
    PlateMasker,
    mask_from_plate,
    mask_iou,
    mask_uniform,
    object_mask,
    plate_difference,
    platter_warp,
    read_mask,
    refine_mask,
    write_mask,
)
from hal.mock.scene import PLATTER_RADIUS_M, MockScene

SMALL = (640, 480)
RINGS = (10.0, 30.0, 50.0)
ANGLES = [30.0 * i for i in range(12)]


def _jpeg(rgb: np.ndarray, quality: int = 90) -> np.ndarray:
    """What the camera stores: every mask is computed from a decoded JPEG, as in a scan."""
    ok, buf = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


@pytest.fixture(scope="module")
def scene() -> MockScene:
    return MockScene()


def _holes(mask: np.ndarray, min_area: int = 1) -> int:
    """Openings in the silhouette (background not reaching the border) of min_area or more."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats((~mask).astype(np.uint8),
                                                           connectivity=4)
    border = set(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]).tolist())
    return sum(1 for i in range(1, n)
               if i not in border and stats[i, cv2.CC_STAT_AREA] >= min_area)


def test_every_frame_of_a_three_ring_scan_masks_to_iou_095(scene: MockScene) -> None:
    intr = scene.intrinsics_for(SMALL)
    worst, ious = 1.0, []
    for elevation in RINGS:
        plate_angle = 0.0  # one plate per ring, reused for every frame of the ring
        plate = _jpeg(scene.render_plate(elevation, plate_angle, SMALL))
        pose0 = scene.pose(elevation, 0.0)
        for angle in ANGLES:
            frame = scene.render(elevation, angle, SMALL)
            mask = object_mask(_jpeg(frame.rgb), plate, intrinsics=intr, pose0=pose0,
                               plate_angle_deg=plate_angle, frame_angle_deg=angle,
                               platter_radius_m=PLATTER_RADIUS_M)
            iou = mask_iou(mask, frame.mask)
            ious.append(iou)
            assert iou >= 0.95, (elevation, angle, iou)
            worst = min(worst, iou)
            # The handle's opening survives refinement when the renderer shows one.
            if _holes(frame.mask, 100):
                assert _holes(mask) >= 1, (elevation, angle)
    print(f"\n36 frames at 640x480: IoU worst {worst:.4f}, mean {np.mean(ious):.4f}")


def test_the_platter_must_be_turned_back_not_just_differenced(scene: MockScene) -> None:
    # Without re-projecting the plate, the turned platter texture reads as object.
    elevation, angle = 30.0, 90.0
    plate = _jpeg(scene.render_plate(elevation, 0.0, SMALL))
    frame = scene.render(elevation, angle, SMALL)
    naive = mask_from_plate(_jpeg(frame.rgb), plate)
    warp = platter_warp(scene.intrinsics_for(SMALL), scene.pose(elevation, 0.0), 0.0, angle,
                        PLATTER_RADIUS_M)
    aligned = mask_from_plate(_jpeg(frame.rgb), plate, warp)
    assert mask_iou(naive, frame.mask) < 0.8
    assert mask_iou(aligned, frame.mask) >= 0.95
    # A plate taken at another angle works as well as one taken at angle 0.
    plate_100 = _jpeg(scene.render_plate(elevation, 100.0, SMALL))
    mask = object_mask(_jpeg(frame.rgb), plate_100, intrinsics=scene.intrinsics,
                       pose0=scene.pose(elevation, 0.0), plate_angle_deg=100.0,
                       frame_angle_deg=angle, platter_radius_m=PLATTER_RADIUS_M)
    assert mask_iou(mask, frame.mask) >= 0.95


def test_full_size_frames_mask_as_well(scene: MockScene) -> None:
    for elevation, angle in ((20.0, 45.0), (35.0, 200.0)):
        plate = _jpeg(scene.render_plate(elevation, 0.0))
        frame = scene.render(elevation, angle)
        mask = object_mask(_jpeg(frame.rgb), plate, intrinsics=scene.intrinsics,
                           pose0=scene.pose(elevation, 0.0), frame_angle_deg=angle,
                           platter_radius_m=PLATTER_RADIUS_M)
        assert mask_iou(mask, frame.mask) >= 0.95


def test_uniform_backdrop_fallback_needs_no_plate() -> None:
    scene = MockScene(backdrop="uniform")
    for elevation in RINGS:
        for angle in (0.0, 120.0, 250.0):
            frame = scene.render(elevation, angle, SMALL)
            mask = mask_uniform(_jpeg(frame.rgb))
            assert mask_iou(mask, frame.mask) >= 0.95, (elevation, angle)
            assert np.array_equal(mask, object_mask(_jpeg(frame.rgb)))


def test_refinement_keeps_holes_and_thin_parts_but_drops_specks() -> None:
    raw = np.zeros((240, 320), bool)
    raw[40:200, 60:160] = True  # body
    raw[90:150, 160:220] = True  # handle block...
    raw[105:135, 160:205] = False  # ...with a real opening
    raw[60:180, 250:253] = True  # a thin part, 3 px wide, on its own
    raw[20:40, 100:102] = True  # a thin spike, 2 px wide, on the body
    raw[100:103, 100:103] = False  # a colour coincidence inside the body
    raw[10, 10] = raw[220, 300] = True  # noise specks
    mask = refine_mask(raw, strong=raw)  # every raw pixel differs clearly here
    assert not mask[105:135, 163:202].any()  # the opening stays open
    assert mask[100:103, 100:103].all()  # the pin-hole is filled
    assert mask[70:170, 251].all()  # the thin parts survive
    assert mask[20:40, 100:102].all()
    assert not mask[10, 10] and not mask[220, 300]


def test_masks_are_written_as_png_atomically(tmp_path: Path) -> None:
    mask = np.zeros((48, 64), bool)
    mask[10:30, 5:40] = True
    path = write_mask(tmp_path / "frame_001.png", mask)
    assert [p.name for p in tmp_path.iterdir()] == ["frame_001.png"]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(read_mask(path), mask)
    assert set(np.unique(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))) == {0, 255}


def test_a_prepared_plate_masks_exactly_as_the_whole_frame_warp(scene: MockScene) -> None:
    # PlateMasker works out the platter top once per ring and re-projects only the rectangle
    # holding it: every frame's mask must be the one the whole-frame warp gives, bit for bit,
    # also with a distorted lens (undistortion is the costly part it keeps).
    lenses = {"pinhole": scene.intrinsics_for(SMALL),
              "distorted": replace(scene.intrinsics_for(SMALL),
                                   distortion=(-0.12, 0.05, 0.001, -0.0008, 0.0))}
    for name, intr in lenses.items():
        for elevation, plate_angle in ((10.0, 0.0), (50.0, 100.0)):
            plate = _jpeg(scene.render_plate(elevation, plate_angle, SMALL))
            pose0 = scene.pose(elevation, 0.0)
            masker = PlateMasker(plate, intr, pose0, plate_angle, PLATTER_RADIUS_M)
            r0, r1, c0, c1 = masker.top.box
            region = masker.top.region
            assert region[r0:r1, c0:c1].sum() == region.sum() > 0  # the box holds the top
            for angle in (0.0, 95.0, 233.0):
                frame = _jpeg(scene.render(elevation, angle, SMALL).rgb)
                warp = platter_warp(intr, pose0, plate_angle, angle, PLATTER_RADIUS_M)
                whole = mask_from_plate(frame, plate, warp)
                assert np.array_equal(masker.mask(frame, angle), whole), (name, elevation,
                                                                          angle)
                assert np.array_equal(masker.difference(frame, angle),
                                      plate_difference(frame, plate, warp))


@pytest.mark.parametrize("shape", [(240, 320), (960, 1280)])
def test_refinement_on_the_raw_masks_rectangle_is_the_whole_images(shape) -> None:
    # refine_mask works on the raw mask's rectangle plus a margin: it must give what the same
    # steps give on the whole image, for blobs with holes, notches, specks and thin parts,
    # in the middle and against the image's edges.
    rng = np.random.default_rng(15)
    scale = max(1, round(min(shape) / 480))
    for trial in range(6):
        noise = cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), 3 + trial)
        raw = noise > np.quantile(noise, 0.8)
        h, w = shape
        if trial % 3 == 1:
            raw[:, : w // 2] = False  # against one edge only
        elif trial % 3 == 2:  # in the middle, away from every edge
            middle = np.zeros(shape, bool)
            middle[h // 4: 3 * h // 4, w // 5: 3 * w // 5] = True
            raw &= middle
        strong = raw & (rng.random(shape) < 0.7)
        whole = masks._refine(raw.astype(np.uint8), strong, scale)
        assert np.array_equal(refine_mask(raw, strong), whole), trial
        assert np.array_equal(refine_mask(raw), masks._refine(raw.astype(np.uint8), None,
                                                               scale)), trial
