"""The ring steps of a scan (a mixin of FrameSteps, sharing ScanRun's state): its path of
rings, the camera model its poses come from, moving the camera between rings (a tilt axis, or
a guided pause asking the operator), background plates, and each frame's ring, elevation,
pose and mask.

Guided: the job asks for a pause with `message` set ("Set the camera to 35° and press the
button or Resume"); the scan reads `paused`, the UI shows the message, the button daemon's
LED blinks, and a press of the button or POST .../resume continues it, like any pause.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hal import Rig
from scanner_app.models import SCAN_UNDER_WAY, Scan, update_while
from scanner_app.platform.extensions import db
from scanner_app.scans.path import PlannedFrame, Ring, ScanPath
from scanner_app.scans.plates import FrameMasks, Plates
from scanner_app.scans.poses import CameraModel, camera_model, pose_entry

log = logging.getLogger("scanner.scan_job")


def set_camera_message(elevation_deg: float) -> str:
    return f"Set the camera to {elevation_deg:g}° and press the button or Resume."


OBJECT_OFF_MESSAGE = ("Take the object off the platter so the station can photograph the empty "
                      "platter, then press the button or Resume.")
OBJECT_BACK_MESSAGE = ("Put the object back on the platter where it stood and press the button "
                       "or Resume.")


def turn_over_message(elevation_deg: float | None) -> str:
    where = "" if elevation_deg is None else f", set the camera to {elevation_deg:g}°"
    return f"Turn the object over on the platter{where} and press the button or Resume."


class RingSteps:
    path: ScanPath
    model: CameraModel
    plates: Plates | None
    frame_masks: FrameMasks  # the recorder's (ScanRun.__init__)

    def _ours(self) -> list:
        """The scan is still this job's (it was queued or resumed with this job's id)."""
        return [Scan.rq_job_id == self.job_id] if self.job_id else []

    def _prepare_rings(self, rig: Rig) -> None:
        """After the camera opened: the path, the camera model (the scan's calibration, kept
        by id on resume) and the plates of this set-up, all recorded in the metadata."""
        self.path = ScanPath.from_json(self.scan.path, self.planned)
        size = tuple(rig.camera.resolution)
        self.model = camera_model(self.settings.data_dir, self.meta.rig.get("camera") or {},
                                  size, self.scan.calibration_id)
        if self.model.calibration_id and self.scan.calibration_id is None:
            update_while(Scan, self.scan_id, SCAN_UNDER_WAY, where=self._ours(),
                         calibration_id=self.model.calibration_id)
            db.session.commit()
        self.plates = Plates(self.settings.data_dir, self.model, size)
        if rig.tilt is not None:
            rig.tilt.home()  # a switch measures the arm; a servo is driven where it stands
        # Where the arm was last set in this scan (kept across resumes), and the turn-over.
        self.arm = self.meta.extra.get("arm") or {"elevation_deg": None, "turned_over": False}
        taken = (self.meta.extra.get("plates") or {}).get("taken") or {}
        self.meta.extra.update({
            "path": self.path.describe(),
            "poses": {"nominal": self.model.nominal, "note": self.model.note,
                      "camera_model": self.model.to_dict()},
            "plates": {**self.plates.describe(), "taken": taken},
            "arm": self.arm,
        })

    def _ring_elevation(self, rig: Rig, ring: Ring) -> float:
        """The elevation a ring is taken at: its own, or where the rig's camera stands."""
        if ring.elevation_deg is not None:
            return float(ring.elevation_deg)
        if rig.tilt is not None:
            return float(rig.tilt.elevation_deg)
        return self.model.elevation_of(None)

    def _enter_ring(self, rig: Rig, frame: PlannedFrame) -> None:
        """Before a frame: put the camera at its ring's elevation (tilt, or ask someone) and
        have the object turned over for pass 2."""
        ring = frame.ring
        flip = ring.scan_pass == 2 and not self.arm.get("turned_over")
        target = ring.elevation_deg
        moved_by_hand = (rig.tilt is None and target is not None
                         and self.arm.get("elevation_deg") != target
                         and self.path.needs_operator(False))
        if flip or moved_by_hand:
            message = (turn_over_message(target if rig.tilt is None else None) if flip
                       else set_camera_message(target))
            self._wait_for_operator(rig, message)
        if rig.tilt is not None and target is not None:
            rig.tilt.move_to(target)
        if target is not None:
            self.arm["elevation_deg"] = target
        if flip:
            self.arm["turned_over"] = True

    def _wait_for_operator(self, rig: Rig, message: str) -> None:
        """Pause with `message` until someone resumes (button or UI); stop and cancel still
        work meanwhile."""
        log.info("Scan %s waits: %s", self.scan_id, message)
        update_while(Scan, self.scan_id, SCAN_UNDER_WAY, where=self._ours(), control="pause",
                     message=message)
        db.session.commit()
        self._obey_control(rig)  # waits while paused; returns once resumed
        update_while(Scan, self.scan_id, SCAN_UNDER_WAY, where=self._ours(), message=None)
        db.session.commit()

    def _plate_for(self, rig: Rig, elevation: float) -> tuple[Path, float] | None:
        """The ring's background plate: reused from the set-up, or taken now on the mock rig
        (shown the empty platter). A real rig takes the missing ones in a guided step at the
        scan's first frame ([scans] guided_plates), else its masks assume a uniform
        backdrop."""
        if self.plates is None:
            return None
        plate = self.plates.plate(elevation)
        if plate is None and rig.is_mock:
            plate = self.plates.take(rig, elevation)
        elif (plate is None and not (self.recorded or self.pipeline.submitted)
              and self.settings.guided_plates):
            self._guided_plates(rig, elevation)
            plate = self.plates.plate(elevation)
        if plate is not None:
            self.meta.extra["plates"]["taken"][f"{elevation:g}"] = {
                "file": str(plate[0]), "angle_deg": plate[1]}
        return plate

    def _guided_plates(self, rig: Rig, here: float) -> None:
        """Before the first frame (exposure locked, platter in place): object off, one plate
        per ring elevation still missing, camera back to `here`, object back on."""
        assert self.plates is not None
        wanted = sorted({self._ring_elevation(rig, r) for r in self.path.rings})
        missing = [e for e in wanted if self.plates.plate(e) is None]
        self._wait_for_operator(rig, OBJECT_OFF_MESSAGE)
        # The others first, this ring's own last: the camera ends where the frame needs it.
        for elevation in [e for e in missing if e != here] + [e for e in missing if e == here]:
            self._set_elevation(rig, elevation)
            self.plates.take(rig, elevation)
        self._set_elevation(rig, here)
        self._wait_for_operator(rig, OBJECT_BACK_MESSAGE)

    def _set_elevation(self, rig: Rig, elevation: float) -> None:
        if rig.tilt is not None:
            rig.tilt.move_to(elevation)
        elif self.arm.get("elevation_deg") not in (None, elevation):
            self._wait_for_operator(rig, set_camera_message(elevation))
        self.arm["elevation_deg"] = elevation

    def _frame_fields(self, rig: Rig, index: int, angle: float) -> dict[str, Any]:
        """Ring, pass, elevation and pose of frame `index` (for its Capture row and entry)."""
        ring = self.path.frame(index).ring
        elevation = self._ring_elevation(rig, ring)
        return {"ring": ring.index, "scan_pass": ring.scan_pass, "elevation_deg": elevation,
                "pose": pose_entry(self.model.pose(elevation, angle))}

    def _write_mask(self, frame_file: Path, fields: dict[str, Any], angle: float,
                    plate: tuple[Path, float] | None) -> str | None:
        """The frame's mask beside it; a mask that fails is logged, never fails the scan."""
        try:
            written = self.frame_masks.write(frame_file, self.images_dir, self.model,
                                             fields["elevation_deg"], angle, plate)
        except Exception as exc:  # noqa: BLE001 - the frame is safe; the mask can be redone
            log.warning("Scan %s: no mask for %s: %s", self.scan_id, frame_file.name, exc)
            return None
        return written.relative_to(self.store.session_dir(self.session_id)).as_posix()
