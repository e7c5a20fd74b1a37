"""The mock rig's world: a textured mug on a textured platter before a studio backdrop.

Frames are ray cast through the exact camera model of hal.geometry (the intrinsics the mock
camera reports and the pose of `camera_pose`), with numpy only:
- everything that does not turn with the platter (wall, table, platter rim) is cast once
  per (size, elevation) and cached;
- per frame, the platter top is a texture lookup of the cached hit points turned by −θ,
  and only the object's bounding rectangle is cast against its primitives.
The object (hal.mock.scene_object) is an elliptic body plus a torus handle: not a solid of
revolution, with a through-hole seen in profile. Its mask from the renderer is exact: a
pixel is "object" when the ray through the pixel centre hits it.

`MockScene.content` says what lies on the platter ("object", "board" or "empty"); the mock
camera renders whatever it says, which is how calibration and background plates work on
the mock rig.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image

from hal.calibration_board import BoardSpec, board_image
from hal.geometry import (
    Intrinsics,
    Pose,
    RigGeometry,
    camera_pose,
    rot_z,
    undistort_normalised,
)
from hal.mock import scene_textures as tex
from hal.mock.scene_object import MUG, MugShape, intersect_mug, object_mesh, write_object_glb

__all__ = [
    "DEFAULT_GEOMETRY", "DEFAULT_INTRINSICS", "PLATTER_RADIUS_M", "BoardPlacement", "Frame",
    "MockScene", "object_mesh", "scene_content", "write_object_glb",
]

CONTENTS = ("object", "board", "empty")
BACKDROPS = ("studio", "uniform")

DEFAULT_INTRINSICS = Intrinsics(fx=1100.0, fy=1100.0, cx=639.5, cy=479.5,
                                width=1280, height=960)
DEFAULT_GEOMETRY = RigGeometry()  # 0.35 m from the axis, 20 degrees, aimed 4.5 cm up

PLATTER_RADIUS_M = 0.12
PLATTER_THICKNESS_M = 0.015
WALL_Y_M = 0.30
TABLE_TILE_M = 0.6
WALL_TILE_M = (1.2, 0.8)
UNIFORM_COLOUR = (228, 228, 224)
_LIGHT = np.array([-0.35, -0.55, 0.75]) / np.linalg.norm([-0.35, -0.55, 0.75])
_AMBIENT, _DIFFUSE = 0.35, 0.65


def _lambert(n_dot_l: np.ndarray | float) -> np.ndarray | float:
    return _AMBIENT + _DIFFUSE * np.maximum(n_dot_l, 0.0)


@dataclass
class Frame:
    rgb: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray  # (H, W) bool: the object, exactly
    depth: np.ndarray  # (H, W) float32: camera z in metres, inf where nothing was hit


@dataclass
class _Static:
    pose0: Pose
    rgb: np.ndarray
    depth: np.ndarray
    top_box: tuple[int, int, int, int]  # rows r0:r1, cols c0:c1 holding the platter top
    top_mask: np.ndarray  # within top_box
    top_xy: tuple[np.ndarray, np.ndarray]  # lab-frame hit points within top_box


@dataclass(frozen=True)
class BoardPlacement:
    """Where the board lies on the platter: its centre (object frame) and its turn."""

    x_m: float = 0.008
    y_m: float = -0.005
    yaw_deg: float = 12.0


class MockScene:
    def __init__(
        self,
        intrinsics: Intrinsics = DEFAULT_INTRINSICS,
        geometry: RigGeometry = DEFAULT_GEOMETRY,
        backdrop: str = "studio",
        mug: MugShape = MUG,
        board: BoardSpec | None = None,
        board_placement: BoardPlacement | None = None,
    ) -> None:
        if backdrop not in BACKDROPS:
            raise ValueError(f"backdrop must be one of {BACKDROPS}")
        self.intrinsics = intrinsics
        self.geometry = geometry
        self.backdrop = backdrop
        self.mug = mug
        self.board = board or BoardSpec()
        self.board_placement = board_placement or BoardPlacement()
        self.content = "object"  # what lies on the platter; the mock camera asks this
        self._rays: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._static: dict[tuple[int, int, float], _Static] = {}

    # -- camera ------------------------------------------------------------------------
    def intrinsics_for(self, size: tuple[int, int] | None = None) -> Intrinsics:
        if size is None or tuple(size) == (self.intrinsics.width, self.intrinsics.height):
            return self.intrinsics
        return self.intrinsics.scaled(int(size[0]), int(size[1]))

    def pose(self, elevation_deg: float | None = None, angle_deg: float = 0.0) -> Pose:
        return camera_pose(self.geometry, elevation_deg, angle_deg)

    def _normalised_rays(self, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of each pixel centre on the z = 1 plane, lens distortion undone."""
        if size not in self._rays:
            intr = self.intrinsics_for(size)
            w, h = size
            u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
            if intr.has_distortion:
                xn, yn = undistort_normalised((u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy,
                                              intr.distortion)
            else:
                xn, yn = (u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy
            if len(self._rays) > 3:
                self._rays.clear()
            self._rays[size] = (xn, yn)
        return self._rays[size]

    # -- rendering ---------------------------------------------------------------------
    def render(
        self,
        elevation_deg: float | None = None,
        angle_deg: float = 0.0,
        size: tuple[int, int] | None = None,
        content: str | None = None,
        gain: float = 1.0,
        supersample: int = 1,
    ) -> Frame:
        """Render one view; `content` overrides `self.content` for this frame."""
        content = self.content if content is None else content
        if content not in CONTENTS:
            raise ValueError(f"content must be one of {CONTENTS}")
        size = tuple(size or (self.intrinsics.width, self.intrinsics.height))
        if supersample > 1:
            big = self.render(elevation_deg, angle_deg,
                              (size[0] * supersample, size[1] * supersample), content, gain)
            rgb = cv2.resize(big.rgb, size, interpolation=cv2.INTER_AREA)
            small = self.render(elevation_deg, angle_deg, size, content, gain)
            return Frame(rgb, small.mask, small.depth)
        elevation = self.geometry.elevation_deg if elevation_deg is None else elevation_deg
        st = self._static_layers(size, float(elevation))
        rgb = st.rgb.copy()
        depth = st.depth.copy()
        self._draw_platter_top(rgb, st, angle_deg, content)
        mask = np.zeros(depth.shape, bool)
        if content == "object":
            self._draw_object(rgb, depth, mask, st, size, angle_deg)
        if gain != 1.0:
            rgb = np.clip(rgb.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        return Frame(rgb, mask, depth)

    def photo(self, elevation_deg: float | None, angle_deg: float, size: tuple[int, int],
              gain: float = 1.0) -> Image.Image:
        """What the mock camera saves: the view of whatever `content` says, as a PIL image."""
        return Image.fromarray(self.render(elevation_deg, angle_deg, size, gain=gain).rgb)

    def prepare(self, elevation_deg: float | None = None,
                size: tuple[int, int] | None = None) -> None:
        """Cast the layers that do not turn now (0.2-0.4 s at 1280x960, once per elevation
        and size), e.g. while the camera is tilted to a new ring, so frames stay fast."""
        size = tuple(size or (self.intrinsics.width, self.intrinsics.height))
        elevation = self.geometry.elevation_deg if elevation_deg is None else elevation_deg
        self._static_layers(size, float(elevation))

    def describe(self) -> dict[str, Any]:
        """The true camera model (for describe() of the mock camera and for tests)."""
        return {"intrinsics": self.intrinsics.to_dict(), "geometry": self.geometry.to_dict(),
                "backdrop": self.backdrop, "platter_radius_m": PLATTER_RADIUS_M}

    def render_board(self, elevation_deg: float | None = None, angle_deg: float = 0.0,
                     size: tuple[int, int] | None = None, supersample: int = 2) -> np.ndarray:
        """RGB photo of the calibration board lying on the platter (no object)."""
        return self.render(elevation_deg, angle_deg, size, "board", 1.0, supersample).rgb

    def render_plate(self, elevation_deg: float | None = None, angle_deg: float = 0.0,
                     size: tuple[int, int] | None = None) -> np.ndarray:
        """RGB photo of the empty platter: a background plate for masks."""
        return self.render(elevation_deg, angle_deg, size, "empty").rgb

    # -- static layers -----------------------------------------------------------------
    def _static_layers(self, size: tuple[int, int], elevation: float) -> _Static:
        key = (size[0], size[1], round(elevation, 9))
        if key in self._static:
            return self._static[key]
        pose0 = self.pose(elevation, 0.0)
        xn, yn = self._normalised_rays(size)
        rt = pose0.R.T  # at angle 0 the object frame is the lab frame
        c = pose0.centre
        d = [rt[i, 0] * xn + rt[i, 1] * yn + rt[i, 2] for i in range(3)]
        inf = np.inf
        with np.errstate(divide="ignore", invalid="ignore"):
            t_top = np.where(d[2] < 0, -c[2] / d[2], inf)
            xt, yt = c[0] + t_top * d[0], c[1] + t_top * d[1]
            t_top = np.where(xt * xt + yt * yt <= PLATTER_RADIUS_M ** 2, t_top, inf)
            a = d[0] ** 2 + d[1] ** 2
            b = 2 * (c[0] * d[0] + c[1] * d[1])
            cc = c[0] ** 2 + c[1] ** 2 - PLATTER_RADIUS_M ** 2
            disc = b * b - 4 * a * cc
            t_side = (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a)
            zs = c[2] + t_side * d[2]
            t_side = np.where((disc >= 0) & (t_side > 0) & (zs <= 0)
                              & (zs >= -PLATTER_THICKNESS_M), t_side, inf)
            t_table = np.where(d[2] < 0, (-PLATTER_THICKNESS_M - c[2]) / d[2], inf)
            t_wall = np.where(d[1] > 0, (WALL_Y_M - c[1]) / d[1], inf)
        t_table = np.where(c[1] + t_table * d[1] <= WALL_Y_M, t_table, inf)
        ts = np.stack([t_top, t_side, t_table, t_wall])
        which = np.argmin(ts, axis=0)
        depth = np.min(ts, axis=0).astype(np.float32)
        h, w = depth.shape
        rgb = np.empty((h, w, 3), np.uint8)
        rgb[:] = UNIFORM_COLOUR if self.backdrop == "uniform" else (40, 40, 44)
        hit = np.isfinite(depth)
        if self.backdrop == "studio":
            px, py = (c[0] + depth * d[0]), (c[1] + depth * d[1])
            pz = c[2] + depth * d[2]
            table = tex.table_texture()
            n = table.shape[0]
            sel = hit & (which == 2)
            self._paint(rgb, sel, table, px / TABLE_TILE_M * n, py / TABLE_TILE_M * n,
                        float(_lambert(_LIGHT[2])))
            wall = tex.wall_texture()
            sel = hit & (which == 3)
            self._paint(rgb, sel, wall, px / WALL_TILE_M[0] * wall.shape[1],
                        -pz / WALL_TILE_M[1] * wall.shape[0], float(_lambert(-_LIGHT[1])))
            sel = hit & (which == 1)
            # The rim is plain grey all round: a solid of revolution, the same at any angle.
            shade = _lambert((px * _LIGHT[0] + py * _LIGHT[1]) / PLATTER_RADIUS_M)
            rgb[sel] = (np.array([70.0, 70.0, 76.0]) * shade[sel][:, None]).astype(np.uint8)
        top = hit & (which == 0)
        rows, cols = np.nonzero(top.any(axis=1))[0], np.nonzero(top.any(axis=0))[0]
        if len(rows):
            box = (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)
        else:
            box = (0, 0, 0, 0)
        r0, r1, c0, c1 = box
        tb = np.where(top, t_top, 0.0)[r0:r1, c0:c1]
        top_xy = ((c[0] + tb * d[0][r0:r1, c0:c1]).astype(np.float32),
                  (c[1] + tb * d[1][r0:r1, c0:c1]).astype(np.float32))
        st = _Static(pose0, rgb, depth, box, top[r0:r1, c0:c1], top_xy)
        if len(self._static) >= 4:  # about 15 MB each at 1280x960
            self._static.clear()
        self._static[key] = st
        return st

    @staticmethod
    def _paint(rgb: np.ndarray, sel: np.ndarray, texture: np.ndarray, u: np.ndarray,
               v: np.ndarray, shade: float) -> None:
        """Texture lookup (bilinear, tiled) of the pixels in `sel`."""
        if not sel.any():
            return
        mx = np.where(sel, u - 0.5, 0).astype(np.float32)
        my = np.where(sel, v - 0.5, 0).astype(np.float32)
        looked = cv2.remap(texture, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        rgb[sel] = (looked[sel].astype(np.float32) * shade).astype(np.uint8)

    # -- per frame ---------------------------------------------------------------------
    def _draw_platter_top(self, rgb: np.ndarray, st: _Static, angle_deg: float,
                          content: str) -> None:
        r0, r1, c0, c1 = st.top_box
        if r1 <= r0:
            return
        region = rgb[r0:r1, c0:c1]
        if self.backdrop == "uniform":
            region[st.top_mask] = UNIFORM_COLOUR
            if content != "board":
                return
        th = math.radians(angle_deg)
        cs, sn = math.cos(th), math.sin(th)
        x, y = st.top_xy
        xo, yo = cs * x + sn * y, -sn * x + cs * y  # lab point turned back by −θ
        shade = float(_lambert(_LIGHT[2]))
        if self.backdrop == "studio":
            t = tex.platter_texture()
            n = t.shape[0]
            mx = (xo + PLATTER_RADIUS_M) / (2 * PLATTER_RADIUS_M) * n - 0.5
            my = (PLATTER_RADIUS_M - yo) / (2 * PLATTER_RADIUS_M) * n - 0.5
            looked = cv2.remap(t, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            region[st.top_mask] = (looked[st.top_mask] * np.float32(shade)).astype(np.uint8)
        if content == "board":
            img, ppm, margin = board_image(self.board)
            bp = self.board_placement
            yaw = math.radians(bp.yaw_deg)
            dx, dy = xo - bp.x_m, yo - bp.y_m
            # Board x runs along the turned +X, board y (down the page) along the turned −Y.
            bx = math.cos(yaw) * dx + math.sin(yaw) * dy + self.board.width_m / 2
            by = -(-math.sin(yaw) * dx + math.cos(yaw) * dy) + self.board.height_m / 2
            mx = (margin + bx * ppm - 0.5).astype(np.float32)
            my = (margin + by * ppm - 0.5).astype(np.float32)
            looked = cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=-1)
            inside = st.top_mask & (mx >= 0) & (my >= 0) & (mx <= img.shape[1] - 1) & (
                my <= img.shape[0] - 1)
            g = (looked[inside].astype(np.float32) * shade).astype(np.uint8)
            region[inside] = g[:, None]

    def _draw_object(self, rgb: np.ndarray, depth: np.ndarray, mask: np.ndarray,
                     st: _Static, size: tuple[int, int], angle_deg: float) -> None:
        pose = self._pose_at(st, angle_deg)
        intr = self.intrinsics_for(size)
        r0, r1, c0, c1 = _object_box(self.mug, pose, intr, size)
        if r1 <= r0 or c1 <= c0:
            return
        xn, yn = self._normalised_rays(size)
        xn, yn = xn[r0:r1, c0:c1].ravel(), yn[r0:r1, c0:c1].ravel()
        m = pose.R.T
        dirs = m[:, 0:1] * xn + m[:, 1:2] * yn + m[:, 2:3]  # (3, N), object frame
        hit = intersect_mug(self.mug, pose.centre, dirs)
        if hit is None:
            return
        idx, t, colour, normal = hit
        light = rot_z(-math.radians(angle_deg)) @ _LIGHT
        shade = _lambert(normal @ light).astype(np.float32)
        shaded = (colour.astype(np.float32) * shade[:, None]).astype(np.uint8)
        ww = c1 - c0
        rr, cc = r0 + idx // ww, c0 + idx % ww
        rgb[rr, cc] = shaded
        depth[rr, cc] = t  # t is camera z: the rays have z = 1 in camera coordinates
        mask[rr, cc] = True

    def _pose_at(self, st: _Static, angle_deg: float) -> Pose:
        r = st.pose0.R @ rot_z(math.radians(angle_deg))
        return Pose(r, st.pose0.t.copy())


@contextlib.contextmanager
def scene_content(camera: Any, content: str) -> Iterator[Any]:
    """`with scene_content(rig.camera, "board"):` shows the board (or "empty": a background
    plate) to a camera that renders a MockScene, and puts back what was there. Any other
    camera is left alone: on a real rig the operator lays the board or removes the object."""
    scene = getattr(camera, "scene", None)
    if not isinstance(scene, MockScene):
        yield None
        return
    if content not in CONTENTS:
        raise ValueError(f"content must be one of {CONTENTS}")
    previous = scene.content
    scene.content = content
    try:
        yield scene
    finally:
        scene.content = previous


def _object_box(mug: MugShape, pose: Pose, intr: Intrinsics,
                size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Pixel rectangle that holds the object's image (its bounding box projected, padded)."""
    lo, hi = mug.bounds
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                        for z in (lo[2], hi[2])])
    cam = corners @ pose.R.T + pose.t
    uv = cam[:, :2] / cam[:, 2:3] * [intr.fx, intr.fy] + [intr.cx, intr.cy]
    pad = 4 + (0.05 * max(size) if intr.has_distortion else 0)
    c0 = max(0, int(math.floor(uv[:, 0].min() - pad)))
    c1 = min(size[0], int(math.ceil(uv[:, 0].max() + pad)) + 1)
    r0 = max(0, int(math.floor(uv[:, 1].min() - pad)))
    r1 = min(size[1], int(math.ceil(uv[:, 1].max() + pad)) + 1)
    return r0, r1, c0, c1
