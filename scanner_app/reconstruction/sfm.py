"""Refined poses with pycolmap (optional: it has no 64-bit Arm wheel today, so it is imported
only here and only when asked; without it the pipeline builds the hull from known poses).

SIFT features are extracted inside each frame's mask, from the frame cropped to the box
around its object (one box size for all frames; the keypoints are moved back to the whole
frame's pixels in COLMAP's database), matched only between frames that are neighbours along
the scan's path (the next two frames of a ring, and the nearest frames of the rings above and
below), and triangulated from the known poses. The bundle adjustment is the turntable's own
(rig_fit): one correction per ring and one focal-length scale, not free poses, because a small
object fixes a single frame's pose poorly. Triangulation and adjustment alternate: loose first,
then at COLMAP's own thresholds, then a last triangulation of the final poses for the model.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hal.geometry import Pose, colmap_cameras_line, colmap_images_lines
from scanner_app.reconstruction import platter_gauge, rig_fit
from scanner_app.reconstruction.frames import FrameInput

MIN_REGISTERED_SHARE = 0.5
MIN_IMAGE_POINTS = 15  # a frame with fewer triangulated points did not register
MIN_POINTS = 30
MAX_IMAGE_SIZE = 1600
CROP_MARGIN_PX = 24


class RegistrationError(ValueError):
    """Too few frames registered (the message says what to change)."""


class RefinementDiverged(ValueError):
    """The adjustment moved frames further than any calibration is wrong by."""


# Beyond these the adjustment found a wrong minimum, not a calibration error.
DIVERGED_DEG = 10.0
DIVERGED_MM = 50.0


def available() -> bool:
    try:
        import pycolmap  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class Refinement:
    poses: dict[str, Pose]  # refined pose per registered frame name
    focal_px: tuple[float, float]  # refined fx, fy at the frames' size
    points: np.ndarray  # (N, 3) sparse points, object frame
    colours: np.ndarray  # (N, 3) uint8
    registered: int
    reprojection_px: float
    corrections: dict[str, dict[str, float]] = field(default_factory=dict)
    model_dir: Path | None = None
    # Frames with too few triangulated points; the turntable model still corrects their
    # poses with their ring's correction.
    unregistered: list[str] = field(default_factory=list)
    # The scale and lift the platter's rim gave the poses; None: no rim seen (or no radius
    # given), so the calibration's scale and height were kept.
    platter: platter_gauge.PlatterGauge | None = None


def path_pairs(frames: list[FrameInput]) -> list[tuple[str, str]]:
    """Pairs along the scan's path: each frame with the next two of its ring (around the
    ring) and with the nearest-angle frames of the next ring."""
    rings: dict[int, list[FrameInput]] = {}
    for f in frames:
        rings.setdefault(f.ring, []).append(f)
    for ring in rings.values():
        ring.sort(key=lambda f: f.angle_deg % 360)
    pairs: set[tuple[str, str]] = set()
    order = sorted(rings)
    for index, key in enumerate(order):
        ring = rings[key]
        for i, f in enumerate(ring):
            for step in (1, 2):
                other = ring[(i + step) % len(ring)]
                if other is not f:
                    pairs.add(tuple(sorted((f.name, other.name))))
            if index + 1 < len(order):
                above = rings[order[index + 1]]
                gaps = [abs((o.angle_deg - f.angle_deg + 180) % 360 - 180) for o in above]
                for j in np.argsort(gaps)[:2]:
                    pairs.add(tuple(sorted((f.name, above[int(j)].name))))
    return sorted(pairs)


def _crop_boxes(frames: list[FrameInput]) -> dict[str, tuple[int, int, int, int]] | None:
    """Per frame (x0, y0, width, height): one size for all (COLMAP's single camera wants one
    image size), placed around each mask's object. None when a frame has no mask (then the
    whole frames are used)."""
    boxes = {}
    for f in frames:
        mask = f.mask()
        if mask is None or not mask.any():
            return None
        ys, xs = np.nonzero(mask)
        boxes[f.name] = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    height, width = frames[0].mask().shape
    w = min(width, max(b[2] - b[0] for b in boxes.values()) + 2 * CROP_MARGIN_PX)
    h = min(height, max(b[3] - b[1] for b in boxes.values()) + 2 * CROP_MARGIN_PX)
    placed = {}
    for name, (x0, y0, x1, y1) in boxes.items():
        left = min(max((x0 + x1 - w) // 2, 0), width - w)
        top = min(max((y0 + y1 - h) // 2, 0), height - h)
        placed[name] = (left, top, w, h)
    return placed


def _stage_files(frames: list[FrameInput], work: Path
                 ) -> tuple[Path, Path, dict[str, tuple[int, int]]]:
    """The images and masks COLMAP extracts from: each frame cropped to the box around its
    object (SIFT's cost grows with the pixels, and features outside the mask are not kept
    anyway); returns the folders and each frame's crop offset (x, y) in pixels."""
    images, masks = work / "images", work / "masks"
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    boxes = _crop_boxes(frames)
    offsets = {}
    for f in frames:
        target = images / f.name
        mask = f.mask()
        if boxes is None:
            offsets[f.name] = (0, 0)
            if f.image_path is not None and f.image_path.is_file():
                os.symlink(f.image_path.resolve(), target)
            else:
                cv2.imwrite(str(target), cv2.cvtColor(f.rgb(), cv2.COLOR_RGB2BGR))
        else:
            x, y, w, h = boxes[f.name]
            offsets[f.name] = (x, y)
            rgb = f.rgb()
            if rgb.shape[:2] != mask.shape:
                raise ValueError(f"{f.name}: the photo and its mask differ in size")
            # PNG: lossless, so the crop adds no second JPEG loss; small at this size.
            target = images / f.name
            cv2.imwrite(str(target) + ".png", cv2.cvtColor(rgb[y:y + h, x:x + w],
                                                           cv2.COLOR_RGB2BGR))
            os.replace(str(target) + ".png", target)
            mask = mask[y:y + h, x:x + w]
        if mask is not None:
            # Features a few pixels inside the outline are on the object, not on its edge.
            grown = cv2.dilate(mask.astype(np.uint8) * 255, np.ones((5, 5), np.uint8))
            cv2.imwrite(str(masks / f"{f.name}.png"), grown)
    return images, masks, offsets


def _whole_frames(frames: list[FrameInput], folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    for f in frames:
        if f.image_path is not None and f.image_path.is_file():
            os.symlink(f.image_path.resolve(), folder / f.name)
        else:
            cv2.imwrite(str(folder / f.name), cv2.cvtColor(f.rgb(), cv2.COLOR_RGB2BGR))
    return folder


def _shift_keypoints(database: Path, offsets: dict[str, tuple[int, int]],
                     size: tuple[int, int]) -> None:
    """Keypoints found in a crop, moved to the whole frame's pixel coordinates (and the
    camera given the whole frame's size)."""
    import pycolmap

    if not any(offsets.values()):
        return
    db = pycolmap.Database.open(database)
    try:
        for camera in db.read_all_cameras():
            camera.width, camera.height = size
            db.update_camera(camera)
        for image in db.read_all_images():
            dx, dy = offsets[image.name]
            keypoints = db.read_keypoints(image.image_id)
            if len(keypoints):
                keypoints[:, 0] += dx
                keypoints[:, 1] += dy
                db.update_keypoints(image.image_id, keypoints)
    finally:
        db.close()


def pose_difference(a: Pose, b: Pose) -> tuple[float, float]:
    """(rotation angle in degrees, camera-centre distance in metres) between two poses."""
    cos = (np.trace(a.R @ b.R.T) - 1) / 2
    return math.degrees(math.acos(float(np.clip(cos, -1, 1)))), float(
        np.linalg.norm(a.centre - b.centre))


def refine(frames: list[FrameInput], work: Path, *, token: Any = None,
           progress: Callable[[str, float], None] = lambda _s, _f: None,
           threads: int = 2, refine_intrinsics: bool = True,
           platter_radius_m: float = 0.0) -> Refinement:
    """Features → matches → triangulation from known poses → bundle adjustment → the scale
    and height from the platter's rim (radius `platter_radius_m`; 0: kept from the
    calibration)."""
    import pycolmap

    pycolmap.logging.minloglevel = max(int(pycolmap.logging.minloglevel), 1)  # no INFO
    images, masks, offsets = _stage_files(frames, work)
    database = work / "database.db"
    intr = frames[0].intrinsics
    camera_line = colmap_cameras_line(1, intr).split()
    reader = pycolmap.ImageReaderOptions()
    reader.mask_path = str(masks)
    reader.camera_model = camera_line[1]
    reader.camera_params = ",".join(camera_line[4:])
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = threads
    extraction.max_image_size = MAX_IMAGE_SIZE
    extraction.sift.max_num_features = 4096
    extraction.sift.peak_threshold = 0.002  # small, evenly lit objects: keep weak corners
    extraction.use_gpu = False
    progress("features", 0.0)
    pycolmap.extract_features(database, images, image_names=[f.name for f in frames],
                              camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader,
                              extraction_options=extraction, device=pycolmap.Device.cpu,
                              cancellation_token=token)
    _raise_if_cancelled(token)
    _shift_keypoints(database, offsets, (intr.width, intr.height))
    if any(offsets.values()):  # the points' colours come from the whole frames
        images = _whole_frames(frames, work / "frames")
    progress("matching", 0.0)
    pairs_file = work / "pairs.txt"
    pairs_file.write_text("".join(f"{a} {b}\n" for a, b in path_pairs(frames)))
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = threads
    matching.use_gpu = False
    pairing = pycolmap.ImportedPairingOptions()
    pairing.match_list_path = str(pairs_file)
    pycolmap.match_image_pairs(database, matching_options=matching, pairing_options=pairing,
                               device=pycolmap.Device.cpu, cancellation_token=token)

    # Round 1 triangulates with thresholds loose enough for a miscalibrated rig's errors
    # (degrees, many pixels); the turntable's bundle adjustment (rig_fit) corrects each ring;
    # round 2 triangulates again at COLMAP's own thresholds and adjusts once more; round 3
    # only triangulates the final poses for the model written out.
    current = list(frames)
    fitted: rig_fit.RigFit | None = None
    platter = None
    for round_number, loose in enumerate((True, False, False), start=1):
        if round_number == 3 and platter_radius_m > 0:
            # What the photos of the object cannot show, the platter's rim can.
            platter = platter_gauge.fit(current, platter_radius_m)
            current = platter_gauge.apply(current, platter)
        progress("triangulation", 0.0)
        reconstruction = _known_model(database, current, work / f"known-{round_number}")
        out = work / f"triangulated-{round_number}"
        out.mkdir(exist_ok=True)
        reconstruction = pycolmap.triangulate_points(
            reconstruction, database, images, out, clear_points=True,
            options=_triangulation_options(loose), cancellation_token=token)
        _raise_if_cancelled(token)
        if round_number == 3:
            break
        progress("bundle adjustment", 0.5 * (round_number - 1))
        observations, points = _tracks(reconstruction, current)
        if len(points) < MIN_POINTS:
            raise RegistrationError(_too_few(0, len(frames)))
        fitted = rig_fit.fit(current, observations, points, refine_focal=refine_intrinsics)
        scale = fitted.focal_scale if refine_intrinsics else 1.0
        current = [replace(f, pose=fitted.poses[f.name],
                           intrinsics=replace(f.intrinsics, fx=f.intrinsics.fx * scale,
                                              fy=f.intrinsics.fy * scale))
                   for f in current]
    result = _result(reconstruction, frames, current, fitted, work)
    result.platter = platter
    return result


def _too_few(registered: int, total: int) -> str:
    return (f"Only {registered} of {total} frames registered (too few features matched "
            "between neighbouring frames): use a plainer backdrop, light the object evenly, "
            "take more frames per ring, or calibrate the rig and scan again.")


def _tracks(reconstruction: Any, frames: list[FrameInput]
            ) -> tuple[list[tuple[int, int, float, float]], np.ndarray]:
    """(frame index, point index, u, v) in OpenCV pixels, and the points."""
    index = {f.name: i for i, f in enumerate(frames)}
    ids = list(reconstruction.points3D.keys())
    number = {pid: k for k, pid in enumerate(ids)}
    points = np.array([reconstruction.points3D[pid].xyz for pid in ids]).reshape(-1, 3)
    observations = []
    for image in reconstruction.images.values():
        i = index[image.name]
        for point in image.points2D:
            if point.has_point3D():
                # COLMAP puts the centre of the top-left pixel at (0.5, 0.5), OpenCV at 0.
                observations.append((i, number[point.point3D_id], point.xy[0] - 0.5,
                                     point.xy[1] - 0.5))
    return observations, points


def cancelled(token: Any) -> bool:
    """Whether pycolmap's CancellationToken was cancelled (a property in some versions)."""
    if token is None:
        return False
    flag = token.is_cancelled
    return bool(flag() if callable(flag) else flag)


def _raise_if_cancelled(token: Any) -> None:
    if cancelled(token):
        raise InterruptedError("cancelled")


def _triangulation_options(loose: bool) -> Any:
    import pycolmap

    options = pycolmap.IncrementalPipelineOptions()
    if loose:
        tri = options.triangulation
        tri.create_max_angle_error = tri.continue_max_angle_error = 10.0
        tri.merge_max_reproj_error = tri.complete_max_reproj_error = 80.0
        tri.re_max_angle_error = 10.0
        options.mapper.filter_max_reproj_error = 80.0
    return options


def _known_model(database: Path, frames: list[FrameInput], folder: Path) -> Any:
    """A COLMAP model of the known poses, with the database's image and camera ids."""
    import pycolmap

    folder.mkdir(exist_ok=True)
    db = pycolmap.Database.open(database)
    ids = {image.name: (image.image_id, image.camera_id) for image in db.read_all_images()}
    db.close()
    by_name = {f.name: f for f in frames}
    cameras = sorted({camera for _, camera in ids.values()})
    (folder / "cameras.txt").write_text("".join(
        colmap_cameras_line(camera, frames[0].intrinsics) + "\n" for camera in cameras))
    (folder / "images.txt").write_text("".join(
        colmap_images_lines(image, by_name[name].pose, camera, name)
        for name, (image, camera) in sorted(ids.items(), key=lambda kv: kv[1][0])))
    (folder / "points3D.txt").write_text("")
    return pycolmap.Reconstruction(str(folder))


def _result(reconstruction: Any, frames: list[FrameInput], fitted_frames: list[FrameInput],
            fitted: rig_fit.RigFit | None, work: Path) -> Refinement:
    seen = {image.name for image in reconstruction.images.values()
            if image.has_pose and image.num_points3D >= MIN_IMAGE_POINTS}
    registered = len(seen)
    if fitted is None or registered < max(3, MIN_REGISTERED_SHARE * len(frames)):
        raise RegistrationError(_too_few(registered, len(frames)))
    known = {f.name: f.pose for f in frames}
    poses, corrections = {}, {}
    for f in fitted_frames:
        poses[f.name] = f.pose
        angle, move = pose_difference(f.pose, known[f.name])
        corrections[f.name] = {"rotation_deg": angle, "translation_mm": 1000 * move}
    worst = max(corrections.values(), key=lambda c: c["translation_mm"])
    if any(c["rotation_deg"] > DIVERGED_DEG or c["translation_mm"] > DIVERGED_MM
           for c in corrections.values()):
        raise RefinementDiverged(
            f"The pose refinement did not converge (it moved a frame by "
            f"{worst['translation_mm']:.0f} mm), so it was left out; calibrate the rig.")
    points = [np.asarray(p.xyz) for p in reconstruction.points3D.values()]
    colours = [np.asarray(p.color, dtype=np.uint8) for p in reconstruction.points3D.values()]
    model_dir = work / "refined"
    model_dir.mkdir(exist_ok=True)
    reconstruction.write_text(str(model_dir))
    intr = fitted_frames[0].intrinsics
    return Refinement(
        poses=poses, focal_px=(intr.fx, intr.fy),
        points=np.array(points).reshape(-1, 3), colours=np.array(colours).reshape(-1, 3),
        registered=registered,
        reprojection_px=float(reconstruction.compute_mean_reprojection_error()),
        corrections=corrections, model_dir=model_dir,
        unregistered=sorted(f.name for f in frames if f.name not in seen))
