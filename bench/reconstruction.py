"""Reconstruction on the mock rig's ground truth (issue 13's numbers), each beside a baseline
measured in the same run and its target; the load average is printed with every timing (the
machine may be shared):

- 3 rings x 24 frames at 1280x960: the model is ready within 90 s of the scan's completion
  (the frames and masks on disk, as the scan job leaves them; timed: the whole pipeline,
  reading them, refinement with pycolmap when installed, hull, colours, files). Baseline:
  the hull-only part of the same run (what a Pi without pycolmap does).
- mean symmetric surface distance of model.glb to the true mesh <= 1 % of its bounding-box
  diagonal (and the maximum, reported). Baseline: the voxel size, as a share of the diagonal.
- refined poses within 0.2 degrees and 1 mm of the true ones when the calibration the known
  poses come from is perturbed by 2 degrees and 5 mm (one camera error shared by all frames),
  checked on the poses as the pipeline wrote them (colmap/). Baseline: the perturbed poses.
  Photos of the object cannot show the turn about the turntable axis, the height along it
  and the scale; the platter's rim (platter_gauge) gives the height and scale, the turn stays
  the calibration's. The error with all three taken from the truth is printed too.
- a scan run while a reconstruction runs (in a process at the processing worker's priority:
  SCHED_IDLE and the idle I/O class, as `scanner run` and scanner-processing.service start
  it) takes <= 1.02 times the same scan alone (medians of --repeat; the real scan job, as
  bench.capture_pipeline runs it).

    python -m bench reconstruction [--rings 3] [--per-ring 24] [--size 1280x960]
        [--no-refine] [--no-scan] [--only-scan] [--repeat 2] [--scan-frames 24]
        [--background-policy nice|idle]

--background-policy nice runs the background reconstruction at nice 10 alone (the processing
worker's priority before it moved to SCHED_IDLE), to compare.
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import trimesh

from hal.masks import write_mask
from hal.mock.scene import MockScene, object_mesh
from scanner_app.reconstruction import sfm
from scanner_app.reconstruction.frames import FrameInput
from scanner_app.reconstruction.pipeline import reconstruct
from scanner_app.reconstruction.rig_fit import align_gauge
from scanner_app.reconstruction.surface import as_mesh, surface_distance

ELEVATIONS = (10.0, 30.0, 50.0, 20.0, 40.0)
TARGET_SECONDS = 90.0
TARGET_MEAN_PCT = 1.0
TARGET_DEG, TARGET_MM = 0.2, 1.0
TARGET_SCAN_RATIO = 1.02
PROCESSING_NICE = 10  # what `scanner run` gives the processing worker
IDLE_PREFIX = ("chrt", "--idle", "0", "ionice", "-c", "3")


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "?")
    return f"{os.cpu_count()} CPUs (nproc), {model}, {platform.machine()}"


def write_scan(folder: Path, rings: int, per_ring: int, size: tuple[int, int]
               ) -> tuple[list[FrameInput], float]:
    """Frames (JPEG, quality 90) and exact masks on disk, with their true poses."""
    scene = MockScene()
    intrinsics = scene.intrinsics_for(size)
    (folder / "masks").mkdir(parents=True)
    started = time.perf_counter()
    frames = []
    for ring, elevation in enumerate(ELEVATIONS[:rings]):
        for k in range(per_ring):
            angle = 360.0 * k / per_ring
            view = scene.render(elevation, angle, size)
            name = f"frame_{len(frames):04d}.jpg"
            cv2.imwrite(str(folder / name), cv2.cvtColor(view.rgb, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 90])
            write_mask(folder / "masks" / f"frame_{len(frames):04d}.png", view.mask)
            frames.append(FrameInput(name, intrinsics, scene.pose(elevation, angle),
                                     image_path=folder / name,
                                     mask_path=folder / "masks" / f"frame_{len(frames):04d}.png",
                                     ring=ring, angle_deg=angle))
    return frames, time.perf_counter() - started


def perturbed(frames: list[FrameInput], seed: int = 13) -> list[FrameInput]:
    """A calibration wrong by 2 degrees and 5 mm: one error of the camera (a turn about a
    random axis, a step in a random direction, in camera coordinates) shared by every frame,
    as a miscalibrated rig would give them."""
    from hal.geometry import Pose

    rng = np.random.default_rng(seed)
    axis = rng.normal(size=3)
    turn, _ = cv2.Rodrigues(axis / np.linalg.norm(axis) * np.radians(2.0))
    step = rng.normal(size=3)
    step = step / np.linalg.norm(step) * 0.005
    return [FrameInput(f.name, f.intrinsics, Pose(turn @ f.pose.R, turn @ f.pose.t + step),
                       f.image_path, f.mask_path, f.ring, f.angle_deg) for f in frames]


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def line(what: str, value: str, baseline: str, ratio: float | None, target: str,
         ok: bool | None) -> str:
    mark = "" if ok is None else ("  ok" if ok else "  MISSED")
    ratio_text = "" if ratio is None else f" (ratio {ratio:.3f})"
    return f"  {what:<40} {value:>12}  baseline {baseline}{ratio_text}  target {target}{mark}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench reconstruction")
    parser.add_argument("--rings", type=int, default=3)
    parser.add_argument("--per-ring", type=int, default=24)
    parser.add_argument("--size", default="1280x960")
    parser.add_argument("--no-refine", action="store_true", help="hull from known poses only")
    parser.add_argument("--no-scan", action="store_true",
                        help="skip the scan-during-reconstruction measurement")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--scan-frames", type=int, default=24)
    parser.add_argument("--only-scan", action="store_true",
                        help="only the scan-during-reconstruction measurement")
    parser.add_argument("--background-policy", choices=("nice", "idle"), default="idle")
    parser.add_argument("--background", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.background:
        return background(Path(args.background))
    size = tuple(int(x) for x in args.size.split("x"))
    print(f"machine: {machine()}; pycolmap: {'yes' if sfm.available() else 'no'}; {load()}")
    missed = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        frames, render_s = write_scan(root / "scan", args.rings, args.per_ring, size)
        print(f"  rendered {len(frames)} frames at {size[0]}x{size[1]} in {render_s:.1f} s "
              "(the mock scan; not counted)")
        refine = sfm.available() and not args.no_refine
        # The pipeline as the job runs it, on the scan as a calibrated rig takes it.
        if not args.only_scan:
            missed += model_figures(frames, root / "calibrated", refine, checked=True)
        if refine and not args.only_scan:
            # Again on a miscalibrated scan: its refined poses build the model.
            noisy = perturbed(frames)
            missed += model_figures(noisy, root / "miscalibrated", refine=True, checked=False)
            missed += refined_pose_figures(frames, noisy, root / "miscalibrated" / "out")
        if not args.no_scan:
            missed += scan_figures(frames, root, args.repeat, args.scan_frames,
                                   args.background_policy)
    return 1 if missed else 0


def model_figures(frames: list[FrameInput], root: Path, refine: bool, checked: bool) -> int:
    """Time and surface distance of one pipeline run; `checked`: against the targets (the
    calibrated scan), else reported (a miscalibrated scan's model keeps the calibration's
    turn, height and scale, which no refinement can see)."""
    out = root / "out"
    out.mkdir(parents=True)
    before, cpu = time.perf_counter(), cpu_seconds()
    metrics = reconstruct(frames, out, root / "work", use_colmap=refine)
    seconds, cpu = time.perf_counter() - before, cpu_seconds() - cpu
    stages = metrics["seconds"]
    hull_only = sum(stages.get(k, 0.0) for k in ("visual hull", "colour", "writing"))
    distance = surface_distance(as_mesh(trimesh.load(out / "model.glb")),
                                as_mesh(object_mesh()))
    what = (("model ready, refined" if refine else "model ready, hull from known poses")
            + ("" if checked else " (miscalibrated)"))
    mark = (lambda ok: ok) if checked else (lambda ok: None)  # noqa: E731
    print(line(what, f"{seconds:.1f} s", f"hull-only part {hull_only:.1f} s",
               seconds / hull_only if hull_only else None, f"<= {TARGET_SECONDS:.0f} s",
               mark(seconds <= TARGET_SECONDS))
          + f"  [{load()}, {cpu:.0f} s CPU in this process]")
    print("    stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items()))
    voxel_pct = 100 * metrics["voxel_mm"] / 1000 / distance.diagonal_m
    print(line("mean symmetric surface distance", f"{distance.mean_pct:.3f} %",
               f"voxel {voxel_pct:.3f} %", distance.mean_pct / voxel_pct,
               f"<= {TARGET_MEAN_PCT} % of diagonal", mark(distance.mean_pct <= TARGET_MEAN_PCT)))
    print(line("max surface distance (reported)", f"{distance.max_pct:.2f} %",
               f"voxel {voxel_pct:.3f} %", distance.max_pct / voxel_pct, "-", None))
    print(f"    diagonal {1000 * distance.diagonal_m:.1f} mm, mean "
          f"{1000 * distance.mean_m:.2f} mm, max {1000 * distance.max_m:.2f} mm, voxel "
          f"{metrics['voxel_mm']} mm")
    if "registered_frames" in metrics:
        print(f"    registered {metrics['registered_frames']} / {len(frames)}, "
              f"reprojection {metrics['reprojection_error_px']} px, refined poses used: "
              f"{metrics['refined_poses_used']}, focal {metrics['focal_px']}")
        print(f"    platter gauge: {metrics.get('platter_gauge')}"
              f"{' ' + metrics['platter_note'] if 'platter_note' in metrics else ''}")
    if not checked:
        return 0
    return int(seconds > TARGET_SECONDS) + int(distance.mean_pct > TARGET_MEAN_PCT)


def refined_poses(model_dir: Path) -> dict:
    """The poses of the refined COLMAP model the pipeline wrote (outputs colmap/)."""
    import pycolmap

    from hal.geometry import Pose

    model = pycolmap.Reconstruction(str(model_dir))
    poses = {}
    for image in model.images.values():
        matrix = image.cam_from_world().matrix()
        poses[image.name] = Pose(np.asarray(matrix[:, :3]), np.asarray(matrix[:, 3]))
    return poses


def worst(poses: dict, truth: dict) -> tuple[float, float]:
    errors = [sfm.pose_difference(p, truth[n]) for n, p in poses.items()]
    return max(a for a, _ in errors), 1000 * max(m for _, m in errors)


def refined_pose_figures(frames: list[FrameInput], noisy: list[FrameInput], out: Path) -> int:
    truth = {f.name: f.pose for f in frames}
    known = {f.name: f.pose for f in noisy}
    result = refined_poses(out / "colmap")
    raw_deg, raw_mm = worst(result, truth)
    deg, mm = worst(align_gauge(result, truth), truth)
    base_deg, base_mm = worst(align_gauge(known, truth), truth)
    raw_base_deg, raw_base_mm = worst(known, truth)
    print(f"  refined poses: {len(result)} of {len(frames)} frames, worst frame, as the "
          "pipeline wrote them (scale and height from the platter's rim)")
    print(line("  rotation error", f"{raw_deg:.3f} deg", f"perturbed {raw_base_deg:.3f} deg",
               raw_deg / raw_base_deg, f"<= {TARGET_DEG} deg", raw_deg <= TARGET_DEG))
    print(line("  position error", f"{raw_mm:.2f} mm", f"perturbed {raw_base_mm:.2f} mm",
               raw_mm / raw_base_mm, f"<= {TARGET_MM} mm", raw_mm <= TARGET_MM))
    print(f"    with the turn about the axis, height and scale taken from the truth: "
          f"{deg:.3f} deg, {mm:.2f} mm; perturbed {base_deg:.3f} deg, {base_mm:.2f} mm")
    return int(raw_deg > TARGET_DEG) + int(raw_mm > TARGET_MM)


def background(frames_file: Path) -> int:
    """A reconstruction at the processing worker's nice level, again and again until killed
    (the load a scan meets while the processing worker works)."""
    if os.sched_getscheduler(0) != getattr(os, "SCHED_IDLE", -1):
        os.nice(PROCESSING_NICE)
    frames = pickle.loads(frames_file.read_bytes())
    for _round in range(1000):
        # A folder of its own: the background of an earlier --repeat left bg-* behind.
        out = Path(tempfile.mkdtemp(prefix="bg-", dir=frames_file.parent))
        reconstruct(frames, out, out / "work")
    return 0


def scan_figures(frames: list[FrameInput], root: Path, repeat: int, count: int,
                 policy: str = "nice") -> int:
    from flask_migrate import upgrade

    from bench.capture_pipeline import PROFILE
    from scanner_app import create_app
    from scanner_app.config import load_settings
    from scanner_app.runtime.redis_server import PrivateRedis

    frames_file = root / "bg" / "frames.pkl"
    frames_file.parent.mkdir()
    frames_file.write_bytes(pickle.dumps(frames))
    data_dir = root / "station"
    data_dir.mkdir()
    redis = PrivateRedis(data_dir).start()
    saved = dict(os.environ)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCANNER_")}
        env.update({"SCANNER_DATA_DIR": str(data_dir), "SCANNER_HAL": "mock",
                    "SCANNER_TIMEZONE": "UTC", "SCANNER_REDIS_URL": redis.url,
                    "SCANNER_MOCK_CAPTURE_SECONDS":
                        saved.get("SCANNER_MOCK_CAPTURE_SECONDS", "0.25"),
                    "SCANNER_MOCK_SECONDS_PER_REV":
                        saved.get("SCANNER_MOCK_SECONDS_PER_REV", "4")})
        os.environ.clear()
        os.environ.update(env)
        app = create_app(load_settings(env=env))
        with app.app_context():
            upgrade()
        scan(app, 4)  # warm-up: background plates, imports
        alone, during = [], []
        for _ in range(max(1, repeat)):
            alone.append(scan(app, count))
            command = [sys.executable, "-m", "bench.reconstruction", "--background",
                       str(frames_file)]
            errors = frames_file.parent / "background.log"
            with errors.open("wb") as log:
                worker = subprocess.Popen(
                    [*IDLE_PREFIX, *command] if policy == "idle" else command, env=saved,
                    cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.DEVNULL,
                    stderr=log)
            try:
                time.sleep(3.0)  # into its features and hull, not its imports
                if worker.poll() is not None:
                    tail = errors.read_text(errors="replace")[-1500:]
                    raise RuntimeError(f"the background reconstruction stopped early:\n{tail}")
                during.append(scan(app, count))
            finally:
                worker.kill()
                worker.wait()
    finally:
        redis.stop()
        os.environ.clear()
        os.environ.update(saved)
    alone_s, during_s = statistics.median(alone), statistics.median(during)
    ratio = during_s / alone_s
    print(line(f"scan of {count} frames during a reconstruction", f"{during_s:.2f} s",
               f"alone {alone_s:.2f} s", ratio, f"<= {TARGET_SCAN_RATIO}",
               ratio <= TARGET_SCAN_RATIO) + f"  [{load()}; profile {PROFILE}; {policy}; "
          f"alone {', '.join(f'{s:.2f}' for s in alone)}; during "
          f"{', '.join(f'{s:.2f}' for s in during)}]")
    return int(ratio > TARGET_SCAN_RATIO)


def scan(app, frames: int) -> float:
    from bench.capture_pipeline import _scan

    return _scan(app, frames)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
