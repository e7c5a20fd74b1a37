"""Disk space: estimate what a scan will write and refuse it before it fills the SD card.

A refusal is a StationError with code "disk_space" and HTTP status 507 (Insufficient
Storage): the request was fine, the station just has no room for the result.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from scanner_app.config import ScanProfile, Settings
from scanner_app.platform.errors import StationError

MB = 1024 * 1024
# Bytes per pixel of a photo JPEG by quality (upper end of what real scans produce);
# the synthetic mock frames compress far better, so the estimate errs on the safe side.
_BYTES_PER_PIXEL = ((80, 0.25), (90, 0.35), (95, 0.5), (100, 0.8))
SAFETY_MARGIN = 1.5
# Per frame: metadata entry, thumbnail, and a share of the scan's export ZIP.
PER_FRAME_OVERHEAD = 64 * 1024


class DiskSpaceError(StationError):
    status, code = 507, "disk_space"


@dataclass(frozen=True)
class SpaceCheck:
    needed_bytes: int
    free_bytes: int
    reserve_bytes: int

    @property
    def ok(self) -> bool:
        return self.free_bytes - self.needed_bytes >= self.reserve_bytes


def bytes_per_pixel(quality: int) -> float:
    for upto, factor in _BYTES_PER_PIXEL:
        if quality <= upto:
            return factor
    return _BYTES_PER_PIXEL[-1][1]


def estimate_frame_bytes(profile: ScanProfile) -> int:
    width, height = profile.resolution
    return int(width * height * bytes_per_pixel(profile.jpeg_quality) * SAFETY_MARGIN) + (
        PER_FRAME_OVERHEAD
    )


def estimate_scan_bytes(profile: ScanProfile, frames: int) -> int:
    """What `frames` frames of `profile` will take on disk, with a safety margin.
    A scan's ZIP export stores its JPEGs again, so the frames count twice."""
    return 2 * estimate_frame_bytes(profile) * max(0, frames)


def free_bytes(path: Path) -> int:
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent  # the data dir may not exist yet on a fresh machine
    return shutil.disk_usage(path).free


def check_scan_space(settings: Settings, profile: ScanProfile, frames: int) -> SpaceCheck:
    """Raise DiskSpaceError when the scan would leave less than the reserve free."""
    check = SpaceCheck(
        needed_bytes=estimate_scan_bytes(profile, frames),
        free_bytes=free_bytes(settings.data_dir),
        reserve_bytes=settings.disk_reserve_mb * MB,
    )
    if not check.ok:
        raise DiskSpaceError(
            f"There is not enough free space for this scan: it needs about "
            f"{_mb(check.needed_bytes)} MB, {_mb(check.free_bytes)} MB are free in "
            f"{settings.data_dir}, and the station keeps {settings.disk_reserve_mb} MB in "
            "reserve. Delete old sessions or exports, or scan with fewer frames or a smaller "
            "profile (the reserve is SCANNER_DISK_RESERVE_MB)."
        )
    return check


def _mb(value: int) -> int:
    return max(0, round(value / MB))
