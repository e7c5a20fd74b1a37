"""The ChArUco calibration board: its spec, the OpenCV board, and a printable image.

Board coordinates are OpenCV's: origin at the outer corner of the first square, x along
the squares' columns, y along their rows (down the printed page), metres, z = 0 on the
board's surface.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np


@dataclass(frozen=True)
class BoardSpec:
    squares_x: int = 6
    squares_y: int = 6
    square_m: float = 0.025
    marker_m: float = 0.0185
    dictionary: str = "DICT_4X4_50"
    # How far the printed surface stands above the platter (card, foam board).
    thickness_m: float = 0.0

    @property
    def width_m(self) -> float:
        return self.squares_x * self.square_m

    @property
    def height_m(self) -> float:
        return self.squares_y * self.square_m

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BoardSpec:
        return cls(int(d["squares_x"]), int(d["squares_y"]), float(d["square_m"]),
                   float(d["marker_m"]), str(d["dictionary"]), float(d.get("thickness_m", 0)))


@functools.lru_cache(maxsize=8)
def charuco_board(spec: BoardSpec) -> cv2.aruco.CharucoBoard:
    dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, spec.dictionary))
    return cv2.aruco.CharucoBoard((spec.squares_x, spec.squares_y), spec.square_m,
                                  spec.marker_m, dictionary)


@functools.lru_cache(maxsize=4)
def board_image(spec: BoardSpec, px_per_square: int = 160,
                margin_squares: float = 0.25) -> tuple[np.ndarray, float, int]:
    """Grey image of the board with a white margin; returns (image, px_per_metre, margin_px).

    Board point (x, y) in metres is at image pixel (margin + x * ppm - 0.5, same for y)
    in OpenCV's pixel-centre convention.
    """
    w, h = spec.squares_x * px_per_square, spec.squares_y * px_per_square
    inner = charuco_board(spec).generateImage((w, h), marginSize=0, borderBits=1)
    margin = round(margin_squares * px_per_square)
    img = np.full((h + 2 * margin, w + 2 * margin), 255, np.uint8)
    img[margin:margin + h, margin:margin + w] = inner
    return img, px_per_square / spec.square_m, margin
