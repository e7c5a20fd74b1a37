"""The frames of a scan: driving the rig from frame to frame, obeying pause and cancel in
between, and recording each frame taken (mask, metadata line, Capture row, session counters,
progress in one commit, thumbnail) in the recorder thread of the capture pipeline
(scans/pipeline.py) while the rig moves on. ScanRun (scans/run.py) runs these steps inside its
lifecycle."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Row, Select, select

from hal import ExposureSettings, Rig
from scanner_app.models import SCAN_UNDER_WAY, Capture, Scan, ScanStatus, transition, update_while
from scanner_app.platform.clock import utcnow
from scanner_app.platform.extensions import db
from scanner_app.platform.thumbnails import make_thumbnail
from scanner_app.scans.pipeline import CapturePipeline, TakenFrame
from scanner_app.scans.rings import RingSteps
from scanner_app.sessions.counters import bump_session_counters

log = logging.getLogger("scanner.scan_job")


PAUSE_POLL_SECONDS = 0.2
SETTLE_POLL_SECONDS = 0.05


def frame_angle(index: int, planned: int) -> float:
    """Where frame `index` of `planned` (one turn) is taken, in degrees."""
    return round(index * 360.0 / planned, 6)


class _Cancelled(Exception):
    pass


class _Stopped(Exception):
    pass


class _Superseded(Exception):
    """The scan is no longer this job's (interrupted and resumed elsewhere, or deleted)."""


@dataclass(frozen=True)
class _SettledFrame:
    """A frame's platter in place: what was worked out while it settled."""

    index: int
    angle: float
    fields: dict[str, Any]  # ring, scan_pass, elevation_deg, pose
    plate: tuple[Path, float] | None
    control: Row | None  # the scan's status, control and job, read meanwhile


class FrameSteps(RingSteps):
    """The frame steps of ScanRun (a mixin: they share its state, see ScanRun.__init__)."""

    pipeline: CapturePipeline
    _control_query: Select | None = None

    def _drive(self, rig: Rig) -> None:
        """Open, home, then take every frame not yet recorded with the motor held at its
        microstep and one exposure for the whole scan (locked at its first frame, or the
        one an earlier run of this scan saved)."""
        rig.set_stop_check(self.should_stop)  # a stop request ends a move between two steps
        # The profile decides the frame size; set before opening, since a new size restarts
        # the camera and drops any exposure lock. Opened before describe(), so the metadata
        # records the sensor, its mode and any size warning.
        rig.camera.set_resolution(self.profile.resolution)
        rig.camera.open()
        self.meta.rig = rig.describe()
        self._prepare_rings(rig)  # rings, camera model (poses), plates
        self._obey_control(rig)
        rig.turntable.home()  # without a switch: the saved 0° (the position survives jobs)
        self._note_position(rig)
        todo = [i for i in range(self.planned) if i not in self.recorded]
        # Held from the first move to the last frame: a released microstepped rotor falls
        # into a full-step detent and the recorded angles would no longer be true. A pause
        # keeps it held too, so the platter cannot be nudged meanwhile.
        with rig.hold_position():
            rig.light.on()
            self.light_wanted = True
            self._go_to(rig, todo[0])
            self._hold_exposure(rig)
            for index in todo:
                if index != self.index:  # (the first frame's platter is in place already)
                    self._obey_control(rig, read_while_settling=self._settled.control)
                    self._go_to(rig, index)
                self._capture(rig, self._settled)
        self.index = None

    def _go_to(self, rig: Rig, index: int) -> None:
        """Turn to frame `index` (its true angle: the saved position makes the belief
        right, also on resume) and let the platter settle."""
        self.index = index
        frame = self.path.frame(index)
        self._enter_ring(rig, frame)  # tilt the camera, or ask someone to set it
        rig.turntable.move_to(frame.angle_deg)
        self.pipeline.rig_still()  # the recorder writes the last frame while this one settles
        self._settle(rig, index)

    def _settle(self, rig: Rig, index: int) -> None:
        """Wait the profile's settle time, ending early (stopped) when the worker stops. The
        frame's own work is done inside it, while the platter stands anyway: its fields and
        plate, and the status read for the check before the next move. (Done between the
        capture and the move, that work cost 4-5 ms a frame, the scan's whole excess over
        the rig's floor: the thread wakes from the exposure to cold caches.)"""
        end = time.monotonic() + self.profile.settle_seconds
        # The angle the driver stepped to (whole steps): what the frame shows.
        angle = round(rig.turntable.angle_deg, 6)
        fields = self._frame_fields(rig, index, angle)  # ring, pass, elevation, pose
        self._settled = _SettledFrame(index=index, angle=angle, fields=fields,
                                      plate=self._plate_for(rig, fields["elevation_deg"]),
                                      control=self._read_control())
        while (left := end - time.monotonic()) > 0:
            if self.should_stop():
                raise _Stopped()
            time.sleep(min(left, SETTLE_POLL_SECONDS))

    def _hold_exposure(self, rig: Rig) -> None:
        """Lock exposure, gains and focus once the object is lit and in place; a resumed
        scan re-applies what it saved, so frames before and after a stop match."""
        saved = self._saved_exposure()
        if saved is None:
            exposure = rig.camera.lock_exposure()
        else:
            exposure = rig.camera.apply_exposure(saved)
        self.meta.set_exposure(exposure.as_dict(), reapplied=saved is not None)
        # On disk before the first frame, so a stop after it still resumes with these.
        self.meta.write(self.scan.to_dict(), recorded=self.recorded)

    def _saved_exposure(self) -> ExposureSettings | None:
        saved = self.meta.saved_exposure()
        if saved is None:
            return None
        try:
            return ExposureSettings.from_dict(saved)
        except (KeyError, TypeError, ValueError) as exc:  # a hand-edited or damaged file
            log.warning("Scan %s: its saved exposure %r is unreadable (%s); metering again",
                        self.scan_id, saved, exc)
            return None

    def _note_position(self, rig: Rig) -> None:
        known, note = rig.position_known, rig.turntable.position_note
        self.meta.set_position(known=known, note=note)
        if not known:
            log.info("Scan %s: %s", self.scan_id, note)

    def _capture(self, rig: Rig, settled: _SettledFrame) -> None:
        """Take the frame the platter settled at and hand it to the recorder
        (scans/pipeline.py), which records it while the rig goes on to the next; waits only
        when the recorder is behind."""
        index, angle, ring, plate = settled.index, settled.angle, settled.fields, settled.plate
        path = self.images_dir / f"frame_{index:04d}.jpg"
        taken_at = utcnow()
        self.pending_file = path
        info = rig.camera.capture(
            path,
            exif={"angle_deg": angle, "scan_id": self.scan_id, "session_id": self.session_id,
                  "frame_index": index, "ring": ring["ring"],
                  "elevation_deg": ring["elevation_deg"]},
            quality=self.profile.jpeg_quality,
        )
        self.pipeline.submit(TakenFrame(index=index, angle=angle, taken_at=taken_at, path=path,
                                        info=info, fields=ring, plate=plate))
        self.pending_file = None  # the pipeline's now (its `pending` until recorded)
        self.index = None

    def _record(self, frame: TakenFrame) -> None:
        """In the recorder thread (its own database session): the frame's mask, its metadata
        line, Capture row, session counters and progress in one commit, then its thumbnail.
        Metadata first: after a crash before the commit the frame is not recorded, so a
        resume takes it again and its later line replaces this one (keyed by index)."""
        path, info, ring = frame.path, frame.info, frame.fields
        relative = path.relative_to(self.store.session_dir(self.session_id)).as_posix()
        mask = self._write_mask(path, ring, frame.angle, frame.plate)
        self.meta.add_frame(frame.index, angle=frame.angle, taken_at=frame.taken_at,
                            file=relative, width=info.width, height=info.height,
                            camera=info.settings, mask=mask, **ring)
        capture = Capture(session_id=self.session_id, scan_id=self.scan_id,
                          frame_index=frame.index, path=relative, angle_deg=frame.angle,
                          valid=True, width=info.width, height=info.height,
                          taken_at=frame.taken_at, ring=ring["ring"],
                          elevation_deg=ring["elevation_deg"], scan_pass=ring["scan_pass"])
        db.session.add(capture)
        bump_session_counters(self.session_id, captures_count=1, valid_count=1)
        if not update_while(Scan, self.scan_id, SCAN_UNDER_WAY, where=self._ours(),
                            frames_captured=len(self.recorded) + 1, current_angle=frame.angle,
                            heartbeat_at=utcnow()):
            db.session.rollback()
            raise _Superseded("the scan was taken over by another job")
        db.session.commit()
        self.recorded.add(frame.index)
        self._thumbnail(capture, path)

    def _obey_control(self, rig: Rig, read_while_settling: Row | None = None) -> None:
        """Between frames: stop, cancel, or wait while paused (light off meanwhile).
        `read_while_settling`: the status read while the last frame settled (a request made
        during its exposure is obeyed one frame later); every further check reads afresh."""
        row = read_while_settling
        while True:
            self.pipeline.check()  # a frame the recorder could not record stops the scan
            if self.should_stop():
                raise _Stopped()
            if row is None:
                row = self._read_control()
            if row is None:
                raise _Superseded("the scan was deleted")
            if not row.status.is_under_way or (self.job_id and row.rq_job_id != self.job_id):
                raise _Superseded(f"the scan is now {row.status} under another job")
            if row.control == "cancel":
                raise _Cancelled()
            if row.control == "pause":
                if row.status is not ScanStatus.PAUSED:
                    rig.light.off()
                    # Paused means every frame taken is recorded and in the metadata file.
                    self.pipeline.drain()
                    # The file first, already saying paused, then the status: whoever sees
                    # the scan paused finds every frame in the file.
                    self._consolidate_metadata(status=ScanStatus.PAUSED)
                    self._move(ScanStatus.RUNNING, ScanStatus.PAUSED)
                    log.info("Scan %s paused before frame %s", self.scan_id,
                             len(self.recorded) + 1)
                time.sleep(PAUSE_POLL_SECONDS)
                row = None
                continue
            if row.status is ScanStatus.PAUSED:
                self._move(ScanStatus.PAUSED, ScanStatus.RUNNING)
                if self.light_wanted:
                    rig.light.on()
                log.info("Scan %s resumed", self.scan_id)
            return

    def _read_control(self) -> Row | None:
        """The scan's status, control and job, read afresh (once per frame: the statement is
        built once and runs below the ORM, about half the time of a session query)."""
        if self._control_query is None:
            self._control_query = select(Scan.status, Scan.control, Scan.rq_job_id).where(
                Scan.id == self.scan_id)
        row = db.session.connection().execute(self._control_query).one_or_none()
        db.session.commit()  # end the read, so the next one sees other processes' writes
        return row

    def _move(self, old: ScanStatus, new: ScanStatus) -> None:
        """running <-> paused between frames (a miss shows at the next frame's check)."""
        transition(Scan, self.scan_id, new, from_=old, where=self._ours(),
                   heartbeat_at=utcnow())
        db.session.commit()

    def _consolidate_metadata(self, status: ScanStatus | None = None) -> None:
        """metadata/scans/<id>.json with every recorded frame (the frames log folded in);
        `status`: what the scan is about to read, when the file must be there first."""
        db.session.refresh(self.scan)
        db.session.commit()
        scan = self.scan.to_dict()
        if status is not None:
            scan["status"] = status.value
        try:
            self.meta.write(scan, recorded=self.recorded)
        except OSError as exc:  # the log still holds the frames; the end consolidates again
            log.warning("Scan %s: could not consolidate its metadata: %s", self.scan_id, exc)

    def _thumbnail(self, capture: Capture, path: Path) -> None:
        try:
            make_thumbnail(path, self.store.thumbnail_path(self.session_id, capture.id))
        except Exception as exc:  # noqa: BLE001 - a missing thumbnail is not a failed scan
            log.warning("Scan %s: no thumbnail for %s: %s", self.scan_id, path.name, exc)
