"""The reconstruction pipeline, stage by stage, with progress, ETA and cancel.

    frames (photos, masks, known poses)
    → [pycolmap] features in the masks, matched along the path, triangulated from the known
      poses, the turntable's bundle adjustment (a correction per ring, focal length) →
      the scale and height from the platter's rim (platter_gauge; kept from the calibration
      where no rim shows) → sparse.ply, colmap/ (refined model), the pose corrections
    → visual hull from the masks and the refined poses (the known ones without pycolmap,
      or when the refinement did not converge) → vertex colours from the frame facing each
      vertex best → model.glb
    → report.json (registered frames, reprojection error, pose corrections, time per stage)

Without pycolmap (no 64-bit Arm wheel) the hull is built from the known poses and the report
says that refined poses need a processing worker on a PC. No database and no Flask here:
the job (reconstruction/job.py), the tests and the benchmark all call `reconstruct`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import trimesh

from hal.settings import TurntableSettings
from scanner_app.reconstruction import sfm
from scanner_app.reconstruction.frames import FrameInput
from scanner_app.reconstruction.hull import colour_vertices, visual_hull
from scanner_app.reconstruction.inputs import check_frames

# Share of the whole run each stage takes (measured on the mock's 72 frames at 1280×960,
# frames cropped to the object for SIFT).
WEIGHTS = {"features": 35, "matching": 4, "triangulation": 3, "bundle adjustment": 25,
           "visual hull": 25, "colour": 5, "writing": 3}
NO_COLMAP_NOTE = ("pycolmap is not installed here (it has no wheel for 64-bit Arm), so the "
                  "model was built from the known poses without refining them; refined poses "
                  "need a processing worker on a PC (pip install 'scanner-station[recon]').")
APPLY_REFINED_POSES = True
NOT_APPLIED_NOTE = ("Refined poses, the sparse points and the refined COLMAP model are in the "
                    "outputs; the mesh was built from the known poses. Calibrate the rig "
                    "('scanner hal calibrate') for the best model.")
REFINE_OFF_NOTE = ("Pose refinement was turned off for this worker "
                   "(SCANNER_RECONSTRUCTION_REFINE=0), so the model was built from the known "
                   "poses.")
# The platter's radius (hal.turntable.platter_radius_mm) comes in `facts["platter_radius_m"]`
# (the job passes the station's setting); this default is the setting's.
DEFAULT_PLATTER_RADIUS_M = TurntableSettings().platter_radius_mm / 1000
NO_RIM_NOTE = ("The platter's rim was not found in the photos, so the model's scale and "
               "height are the calibration's.")
MODEL = "model.glb"
SPARSE = "sparse.ply"
REPORT = "report.json"
COLMAP_FILES = ("colmap/cameras.txt", "colmap/images.txt", "colmap/points3D.txt")


class Cancelled(Exception):
    """The reconstruction was cancelled (or its scan or session deleted) meanwhile."""


@dataclass
class Progress:
    """Turns (stage, fraction of the stage) into overall percent and an ETA, and reports."""

    report: Callable[[str, float, int | None], None]
    stages: list[str]
    started: float = field(default_factory=time.monotonic)
    times: dict[str, float] = field(default_factory=dict)
    _stage: str | None = None
    _stage_started: float = 0.0
    _highest: float = 0.0

    def __call__(self, stage: str, fraction: float) -> None:
        now = time.monotonic()
        if stage != self._stage:
            self._close(now)
            self._stage, self._stage_started = stage, now
        total = sum(WEIGHTS[s] for s in self.stages)
        done = sum(WEIGHTS[s] for s in self.stages[:self.stages.index(stage)])
        percent = 100.0 * (done + WEIGHTS[stage] * min(max(fraction, 0.0), 1.0)) / total
        percent = self._highest = max(percent, self._highest)  # never backwards
        elapsed = now - self.started
        eta = round(elapsed * (100 - percent) / percent) if percent >= 5 else None
        self.report(stage, round(percent, 1), eta)

    def _close(self, now: float) -> None:
        """Add the time since the current stage began to it (a stage may come back: the
        refinement alternates triangulation and adjustment)."""
        if self._stage is not None:
            spent = self.times.get(self._stage, 0.0) + now - self._stage_started
            self.times[self._stage] = round(spent, 3)

    def finish(self) -> None:
        self._close(time.monotonic())
        self._stage = None


class _TokenWatch(threading.Thread):
    """Cancels pycolmap's long calls (features, matching) when `cancel()` starts raising."""

    def __init__(self, token: Any, cancel: Callable[[], None]):
        super().__init__(daemon=True)
        self.token, self.cancel, self.halt = token, cancel, threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.5):
            try:
                self.cancel()
            except Cancelled:
                self.token.cancel()
                return


def reconstruct(frames: list[FrameInput], out_dir: Path, work_dir: Path, *,
                report: Callable[[str, float, int | None], None] = lambda *_a: None,
                cancel: Callable[[], None] = lambda: None, resolution: int = 192,
                use_colmap: bool | None = None, threads: int = 2,
                facts: dict | None = None) -> dict[str, Any]:
    """Build the model of `frames` into `out_dir` (files named as the outputs); returns the
    metrics (also in report.json). Raises inputs.InputError, hull.HullError,
    sfm.RegistrationError (each with a sentence saying what to change) or Cancelled."""
    check_frames(frames)
    colmap = sfm.available() if use_colmap is None else use_colmap
    stages = (["features", "matching", "triangulation", "bundle adjustment"] if colmap else [])
    progress = Progress(report, stages + ["visual hull", "colour", "writing"])
    metrics: dict[str, Any] = {"frames": len(frames), "refined": colmap, **(facts or {})}
    outputs: list[str] = []
    poses_used = frames
    refinement = None
    if colmap:
        try:
            radius = float((facts or {}).get("platter_radius_m", DEFAULT_PLATTER_RADIUS_M))
            refinement = _refine(frames, work_dir, progress, cancel, threads, radius)
        except sfm.RefinementDiverged as exc:
            metrics.update(refined=False, note=str(exc))
    else:
        metrics["note"] = NO_COLMAP_NOTE if not sfm.available() else REFINE_OFF_NOTE
    if refinement is not None:
        metrics.update(_refinement_metrics(refinement, frames))
        # Measured on the mock (docs/performance.md, perf-H): a calibration perturbed by
        # 2° and 5 mm comes back to about 0.1° and, but for what photos cannot show (the
        # turn about the axis, the height, the scale: kept from the calibration), 0.3 mm.
        metrics["refined_poses_used"] = APPLY_REFINED_POSES
        if APPLY_REFINED_POSES:
            scale = refinement.focal_px[0] / frames[0].intrinsics.fx
            poses_used = [replace(f, pose=refinement.poses[f.name],
                                  intrinsics=replace(f.intrinsics, fx=f.intrinsics.fx * scale,
                                                     fy=f.intrinsics.fy * scale))
                          for f in frames if f.name in refinement.poses]
        else:
            metrics["note"] = NOT_APPLIED_NOTE
        _write_sparse(refinement, out_dir)
        outputs += [SPARSE, *COLMAP_FILES]
    cancel()
    progress("visual hull", 0.0)
    hull = visual_hull(poses_used, resolution, cancel=cancel,
                       progress=lambda f: progress("visual hull", f))
    progress("colour", 0.0)
    colours = colour_vertices(hull.mesh, poses_used, cancel=cancel)
    progress("writing", 0.0)
    mesh = hull.mesh.copy()
    mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=colours)
    (out_dir / MODEL).write_bytes(mesh.export(file_type="glb"))
    outputs.insert(0, MODEL)
    progress.finish()
    metrics.update({
        "vertices": int(len(mesh.vertices)), "faces": int(len(mesh.faces)),
        "voxel_mm": round(1000 * hull.voxel_m, 3), "watertight": bool(mesh.is_watertight),
        "bounds_m": [[round(float(x), 5) for x in row] for row in mesh.bounds],
        "seconds": {**progress.times, "total": round(time.monotonic() - progress.started, 3)},
        "outputs": [*outputs, REPORT],
    })
    (out_dir / REPORT).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    progress("writing", 1.0)
    return metrics


def _refine(frames: list[FrameInput], work_dir: Path, progress: Progress,
            cancel: Callable[[], None], threads: int, radius_m: float) -> sfm.Refinement:
    import pycolmap

    token = pycolmap.CancellationToken()
    watch = _TokenWatch(token, cancel)
    watch.start()
    try:
        refinement = sfm.refine(frames, work_dir / "colmap", token=token, progress=progress,
                                threads=threads, platter_radius_m=radius_m)
    except InterruptedError:
        raise Cancelled from None
    finally:
        watch.halt.set()
    if sfm.cancelled(token):
        raise Cancelled
    cancel()
    return refinement


def _refinement_metrics(refinement: sfm.Refinement, frames: list[FrameInput]) -> dict:
    corrections = refinement.corrections
    degrees = [c["rotation_deg"] for c in corrections.values()]
    millimetres = [c["translation_mm"] for c in corrections.values()]
    platter = refinement.platter
    return {
        "platter_gauge": None if platter is None else {
            "scale": round(platter.scale, 6), "lift_mm": round(1000 * platter.lift_m, 3),
            "frames": platter.frames_used, "rim_points": platter.rim_points},
        **({"platter_note": NO_RIM_NOTE} if platter is None else {}),
        "registered_frames": refinement.registered,
        "unregistered": refinement.unregistered,
        "reprojection_error_px": round(refinement.reprojection_px, 4),
        "sparse_points": int(len(refinement.points)),
        "focal_px": {"known": [frames[0].intrinsics.fx, frames[0].intrinsics.fy],
                     "refined": [round(x, 3) for x in refinement.focal_px]},
        "pose_corrections": {
            "max_rotation_deg": round(max(degrees), 4), "mean_rotation_deg":
            round(float(np.mean(degrees)), 4), "max_translation_mm": round(max(millimetres), 3),
            "mean_translation_mm": round(float(np.mean(millimetres)), 3),
            "per_frame": {n: {k: round(v, 4) for k, v in c.items()}
                          for n, c in sorted(corrections.items())},
        },
    }


def _write_sparse(refinement: sfm.Refinement, out_dir: Path) -> None:
    cloud = trimesh.PointCloud(refinement.points, colors=refinement.colours
                               if len(refinement.colours) else None)
    (out_dir / SPARSE).write_bytes(cloud.export(file_type="ply"))
    target = out_dir / "colmap"
    target.mkdir(exist_ok=True)
    for name in COLMAP_FILES:
        source = refinement.model_dir / Path(name).name if refinement.model_dir else None
        if source is not None and source.is_file():
            (out_dir / name).write_bytes(source.read_bytes())
