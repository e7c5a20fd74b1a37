"""The data-set export of a scan (GET /api/v1/scans/<id>/dataset.zip): everything a
reconstruction needs, with the poses the station knows.

    README.txt               what is in it, and whether the poses are calibrated or nominal
    images/frame_NNNN.jpg    the frames
    masks/frame_NNNN.jpg.png their masks (255 = object; COLMAP's <image name>.png naming)
    sparse/0/cameras.txt     COLMAP text model: the camera(s), intrinsics and distortion,
    sparse/0/images.txt      one pose per image (world-to-camera quaternion + translation),
    sparse/0/points3D.txt    and no points (COLMAP triangulates them from the known poses)
    transforms.json          the same for nerfstudio / instant-ngp
A second pass (object turned over) has its own model under pass2/: its poses are the same
turntable poses, but the object lies differently on the platter, so they do not join pass 1.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from flask import Response
from sqlalchemy import select
from zipstream import ZipStream

from hal.geometry import (
    colmap_cameras_line,
    colmap_images_lines,
    nerfstudio_camera,
    nerfstudio_frame,
)
from scanner_app.models import Capture, Scan
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import current_storage
from scanner_app.scans.plates import mask_path
from scanner_app.scans.poses import CameraModel, nominal_model

CAMERAS_HEADER = ("# Camera list with one line of data per camera:\n"
                  "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n")
IMAGES_HEADER = ("# Image list with two lines of data per image:\n"
                 "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME\n"
                 "#   POINTS2D[] as (X, Y, POINT3D_ID)\n")
POINTS_HEADER = ("# 3D point list with one line of data per point:\n"
                 "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)\n"
                 "# Number of points: 0\n")


def scan_camera_model(metadata: dict[str, Any]) -> CameraModel:
    """The model the scan's frames were posed with (older scans: nominal, as the rig was)."""
    poses = metadata.get("poses") or {}
    if isinstance(poses.get("camera_model"), dict):
        return CameraModel.from_dict(poses["camera_model"])
    camera = (metadata.get("rig") or {}).get("camera") or {}
    size = tuple(camera.get("resolution") or (1280, 960))
    return nominal_model(camera, size, "This scan was taken before poses were recorded; they "
                                       "are nominal.")


def _frames(scan: Scan) -> list[Capture]:
    return list(db.session.scalars(
        select(Capture).where(Capture.scan_id == scan.id, Capture.frame_index.is_not(None))
        .order_by(Capture.frame_index)))


def _model_files(model: CameraModel, captures: list[Capture], masks: dict[int, str],
                 up: str = "") -> dict[str, str]:
    """cameras.txt, images.txt, points3D.txt and transforms.json of some frames (`up`: the
    way from the transforms.json to the archive's top)."""
    cameras: dict[tuple[int, int], int] = {}
    images, frames = [], []
    for image_id, c in enumerate(captures, start=1):
        size = (int(c.width), int(c.height))
        camera_id = cameras.setdefault(size, len(cameras) + 1)
        pose = model.pose(model.elevation_of(c.elevation_deg), float(c.angle_deg or 0.0))
        name = Path(c.path).name
        images.append(colmap_images_lines(image_id, pose, camera_id, name))
        frames.append(nerfstudio_frame(
            f"{up}images/{name}", pose, up + masks[c.id] if c.id in masks else None,
            colmap_im_id=image_id,
            ring=c.ring, elevation_deg=c.elevation_deg, angle_deg=c.angle_deg))
    lines = [colmap_cameras_line(i, model.intrinsics_for(size)) for size, i in cameras.items()]
    transforms: dict[str, Any] = {}
    if len(cameras) == 1:  # one camera: its intrinsics at the top, as nerfstudio reads them
        transforms.update(nerfstudio_camera(model.intrinsics_for(next(iter(cameras)))))
    else:
        for f, c in zip(frames, captures, strict=True):
            f.update(nerfstudio_camera(model.intrinsics_for((c.width, c.height))))
    transforms["frames"] = frames
    return {
        "cameras.txt": CAMERAS_HEADER + f"# Number of cameras: {len(cameras)}\n"
        + "".join(line + "\n" for line in lines),
        "images.txt": IMAGES_HEADER + f"# Number of images: {len(images)}\n" + "".join(images),
        "points3D.txt": POINTS_HEADER,
        "transforms.json": json.dumps(transforms, indent=2),
    }


def readme(scan: Scan, model: CameraModel, passes: dict[int, list[Capture]],
           mask_count: int) -> str:
    if model.nominal:
        poses = ("NOMINAL poses: this rig had no calibration when the scan ran, so poses come "
                 "from the configured (or simulated) rig geometry, not from a measurement. "
                 f"{model.note or ''} Run `scanner hal calibrate` before scanning for measured "
                 "poses.")
    else:
        poses = (f"Calibrated poses: rig calibration {model.calibration_id} (reprojection "
                 f"error {model.rms_px:.3f} px RMS).")
    rings = sorted({(c.scan_pass, c.ring, c.elevation_deg) for cs in passes.values()
                    for c in cs}, key=lambda r: (r[0] or 1, r[1] or 0))
    ring_lines = "".join(
        f"  pass {p or 1}, ring {r if r is not None else 0}: elevation "
        f"{e if e is not None else model.elevation_of(None):g} degrees\n" for p, r, e in rings)
    pass2 = ("\npass2/ holds the second pass (object turned over): the same turntable poses, "
             "but the object lies differently, so it is a model of its own.\n"
             if 2 in passes else "")
    count = sum(len(v) for v in passes.values())
    return (
        f"Scan {scan.id} of session {scan.session_id}: {count} frames, {mask_count} masks.\n\n"
        f"{poses}\n\n"
        "Object frame: origin at the platter centre on its surface, Z up along the turntable "
        "axis, metres; turning the platter by +a is the camera orbiting by -a.\n\n"
        "images/             the frames (JPEG)\n"
        "masks/              one mask per frame, <image name>.png, 255 = object\n"
        "sparse/0/           COLMAP text model: cameras.txt (intrinsics, OPENCV model),\n"
        "                    images.txt (world-to-camera poses), points3D.txt (empty)\n"
        "transforms.json     nerfstudio / instant-ngp (camera-to-world, OpenGL axes)\n"
        f"{pass2}\nRings:\n{ring_lines}\n"
        "COLMAP: point_triangulator with --input_path sparse/0 and the images, or "
        "import the model as known poses. nerfstudio: ns-train ... --data <this folder>.\n")


def dataset_zip(scan: Scan) -> ZipStream:
    """The data set as a sized, streamed ZIP (needs an app context)."""
    store = current_storage()
    images_dir = store.scan_images_dir(scan.session_id, scan.id)
    try:
        metadata = json.loads(store.scan_metadata_path(scan.session_id, scan.id)
                              .read_text(encoding="utf-8"))
    except (OSError, ValueError):
        metadata = {}
    model = scan_camera_model(metadata)
    root = store.session_dir(scan.session_id)
    archive = ZipStream(sized=True)
    passes: dict[int, list[Capture]] = defaultdict(list)
    masks: dict[int, str] = {}
    for c in _frames(scan):
        frame = root / c.path
        if not frame.is_file():
            continue
        passes[c.scan_pass or 1].append(c)
        archive.add_path(str(frame), f"images/{frame.name}")
        mask = mask_path(images_dir, frame)
        if mask.is_file():
            masks[c.id] = f"masks/{frame.name}.png"
            archive.add_path(str(mask), masks[c.id])
    for number, captures in sorted(passes.items()):
        prefix = "" if number == 1 else f"pass{number}/"
        files = _model_files(model, captures, masks, "../" if prefix else "")
        for name, text in files.items():
            where = name if name == "transforms.json" else f"sparse/0/{name}"
            archive.add(text.encode("utf-8"), f"{prefix}{where}")
    archive.add(readme(scan, model, passes, len(masks)).encode("utf-8"), "README.txt")
    return archive


def dataset_response(scan: Scan) -> Response:
    """The data set as a streamed download whose Content-Length is its exact size."""
    archive = dataset_zip(scan)
    return Response(iter(archive), mimetype="application/zip", direct_passthrough=True,
                    headers={"Content-Disposition":
                             f'attachment; filename="scan-{scan.id}-dataset.zip"',
                             "Content-Length": str(len(archive)), "Cache-Control": "no-store"})
