"""The rig's calibrations on disk: <data dir>/calibration/<id>.json, one per run of
`scanner hal calibrate`, and current.json, the one new scans use (both written atomically).

A scan records the id of the calibration it used; without one its poses are nominal (the
configured geometry), and its metadata and data-set README say so.
"""

from __future__ import annotations

import logging
from pathlib import Path

from hal.calibration import Calibration, CalibrationError, load_calibration, save_calibration

log = logging.getLogger("scanner.calibrations")

CURRENT = "current.json"


def calibration_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "calibration"


def save_rig_calibration(data_dir: Path, calibration: Calibration) -> Path:
    """Keep this calibration under its id and make it the current one; returns its path."""
    folder = calibration_dir(data_dir)
    path = save_calibration(calibration, folder / f"{calibration.id}.json")
    save_calibration(calibration, folder / CURRENT)  # last: a crash keeps the old current
    return path


def current_calibration(data_dir: Path) -> tuple[Calibration | None, str | None]:
    """The calibration new scans use, or (None, why not) when there is none usable."""
    path = calibration_dir(data_dir) / CURRENT
    if not path.exists():
        return None, ("The rig has no calibration (run `scanner hal calibrate`), so poses "
                      "are nominal: taken from the configured geometry, not measured.")
    try:
        return load_calibration(path), None
    except CalibrationError as exc:
        log.warning("%s", exc)
        return None, f"{exc} Until then poses are nominal."
