"""Mesh-to-mesh surface distance, for the tests and the benchmark against the mock's true mesh.

Points sampled on one surface are measured to a dense sample of the other (a KD-tree, no
spatial-index package needed). The dense sample's spacing makes each distance slightly too
large, never too small, so a figure that passes here passes against the exact surface too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from scipy.spatial import cKDTree


@dataclass(frozen=True)
class SurfaceDistance:
    mean_m: float  # mean of the two directions' means (symmetric)
    max_m: float  # largest distance either way (Hausdorff, sampled)
    diagonal_m: float  # the true mesh's bounding-box diagonal

    @property
    def mean_pct(self) -> float:
        return 100.0 * self.mean_m / self.diagonal_m

    @property
    def max_pct(self) -> float:
        return 100.0 * self.max_m / self.diagonal_m


def _one_way(source: trimesh.Trimesh, target: trimesh.Trimesh, count: int,
             dense: int) -> np.ndarray:
    points, _ = trimesh.sample.sample_surface_even(source, count, seed=1)
    reference, _ = trimesh.sample.sample_surface_even(target, dense, seed=2)
    distances, _ = cKDTree(reference).query(points)
    return distances


def surface_distance(model: trimesh.Trimesh, truth: trimesh.Trimesh, count: int = 5000,
                     dense: int = 300_000) -> SurfaceDistance:
    there = _one_way(model, truth, count, dense)
    back = _one_way(truth, model, count, dense)
    diagonal = float(np.linalg.norm(truth.bounds[1] - truth.bounds[0]))
    return SurfaceDistance(float((there.mean() + back.mean()) / 2),
                           float(max(there.max(), back.max())), diagonal)


def as_mesh(loaded: trimesh.Trimesh | trimesh.Scene) -> trimesh.Trimesh:
    """One mesh of a loaded GLB (a scene of one or more meshes)."""
    if isinstance(loaded, trimesh.Scene):
        return loaded.to_geometry()
    return loaded
