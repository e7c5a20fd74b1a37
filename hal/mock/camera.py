"""Simulated camera: photographs the mock scene (hal.mock.scene: a textured mug on a textured
platter) through its exact pinhole model, at the platter's angle and the arm's elevation.

It behaves like the Pi camera where the rest of the station can tell the difference: it
takes time per frame, meters and locks exposure, writes atomically, and fails on demand.
New exposure values reach the frames `control_delay_frames` frames after they are asked for
(libcamera's 2-3 frames), so `apply_exposure` reads frames until they are in effect, like
the Pi driver. Wired by the mock rig, it photographs the platter's TRUE angle.

Failures can be injected two ways:
- constructor: `fail_at_capture=N` makes the N-th capture (counting from 1) fail with
  `fault` ("unplugged": this and every later capture fails, as an unplugged camera would;
  "timeout": only that capture fails);
- a fault file (settings.mock.fault_file): when that file exists at capture time, its
  stripped text names the fault: "unplugged" (also when empty), "timeout" or "disk-full".
  Other processes' tests create it to break a running worker.
"""

from __future__ import annotations

import errno
import io
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hal.atomic import atomic_write_bytes
from hal.errors import DISK_FULL_MESSAGE, CameraError, CameraTimeout, CameraUnplugged
from hal.exif import build_exif
from hal.interfaces import Camera, CaptureInfo, ExposureSettings
from hal.mock.scene import MockScene

FAULTS = ("unplugged", "timeout", "disk-full")
_BASE_EXPOSURE_US = 8000
_COLOUR_GAINS = (1.85, 1.55)


def auto_exposure_gain(angle_deg: float) -> float:
    """How much the simulated auto-exposure brightens the frame at this angle.

    Real AE/AWB drift as the object turns; that is why scans lock exposure. The mock
    drifts by a few percent so a forgotten lock shows up as flicker between frames.
    """
    return 1.0 + 0.06 * math.sin(math.radians(2 * angle_deg))


class MockCamera(Camera):
    def __init__(
        self,
        resolution: tuple[int, int] = (1280, 960),
        capture_seconds: float = 0.2,
        angle_source: Callable[[], float] | None = None,
        fail_at_capture: int | None = None,
        fault: str = "unplugged",
        fault_file: str | Path | None = None,
        jpeg_quality: int = 90,
        sleep: Callable[[float], None] = time.sleep,
        control_delay_frames: int = 2,
        scene: MockScene | None = None,
        elevation_source: Callable[[], float] | None = None,
    ) -> None:
        if fault not in ("unplugged", "timeout"):
            raise ValueError("fault must be 'unplugged' or 'timeout'")
        self._configured = (int(resolution[0]), int(resolution[1]))
        self._resolution = self._configured
        self._capture_seconds = float(capture_seconds)
        # The mock rig wires this to the mock turntable, so frames show the platter's angle
        # without callers passing it; a bare camera falls back to exif["angle_deg"].
        self._angle_source = angle_source
        # What the camera sees, and (wired by the mock rig to the arm) from how high up;
        # without a source the scene's own elevation.
        self.scene = scene or MockScene()
        self._elevation_source = elevation_source
        self._fail_at = fail_at_capture
        self._fault = fault
        self._fault_file = Path(fault_file) if fault_file else None
        self._quality = jpeg_quality
        self._sleep = sleep
        self._open = False
        self._unplugged = False
        self._locked: ExposureSettings | None = None
        self._locked_gain = 1.0
        self._delay = int(control_delay_frames)
        self._gain_in_effect: float | None = None  # None: auto-exposure follows the view
        self._pending: list[tuple[int, float | None]] = []  # (frame it lands on, gain)
        self.frames = 0  # simulated sensor frames so far
        self.captures = 0  # capture() calls so far, failed ones included

    # -- lifecycle ---------------------------------------------------------------------
    def open(self) -> None:
        if self._unplugged:
            raise CameraUnplugged()
        self._open = True

    def close(self) -> None:
        self._open = False
        self._locked = None
        self._gain_in_effect = None
        self._pending = []

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def resolution(self) -> tuple[int, int]:
        return self._resolution

    def set_resolution(self, size: tuple[int, int] | None) -> None:
        new = self._configured if size is None else (int(size[0]), int(size[1]))
        if new != self._resolution:
            self._resolution = new
            self.close()  # like the Pi camera: a restart forgets the lock

    # -- exposure ----------------------------------------------------------------------
    @property
    def locked_exposure(self) -> ExposureSettings | None:
        return self._locked

    def lock_exposure(self) -> ExposureSettings:
        self.open()
        gain = auto_exposure_gain(self._current_angle(None))
        return self.apply_exposure(ExposureSettings(
            exposure_time_us=round(_BASE_EXPOSURE_US * gain),
            analogue_gain=1.0,
            colour_gains=_COLOUR_GAINS,
            lens_position=None,
        ))

    def apply_exposure(self, exposure: ExposureSettings) -> ExposureSettings:
        """Hold these values (a resumed scan re-applies the ones it saved), confirmed by
        reading frames until they are in effect."""
        self.open()
        gain = exposure.exposure_time_us * exposure.analogue_gain / _BASE_EXPOSURE_US
        self._pending.append((self.frames + self._delay + 1, gain))
        for _ in range(self._delay + 2):
            self._next_frame()
            if self._gain_in_effect == gain:
                break
        else:
            raise CameraError("The simulated camera did not take the exposure values.")
        self._locked_gain = gain
        self._locked = exposure
        return exposure

    def unlock_exposure(self) -> None:
        self._locked = None
        self._pending.append((self.frames + self._delay + 1, None))

    def _next_frame(self, angle: float | None = None) -> float:
        """One sensor frame: controls asked for earlier land now; returns its gain."""
        self.frames += 1
        landed = [g for when, g in self._pending if when <= self.frames]
        if landed:
            self._gain_in_effect = landed[-1]
            self._pending = [(w, g) for w, g in self._pending if w > self.frames]
        if self._gain_in_effect is not None:
            return self._gain_in_effect
        return auto_exposure_gain(self._current_angle(None) if angle is None else angle)

    # -- capture -----------------------------------------------------------------------
    def capture(
        self, path: Path, exif: dict[str, Any] | None = None, quality: int | None = None
    ) -> CaptureInfo:
        path = Path(path)
        self.captures += 1
        self._raise_injected_fault()
        self.open()
        started = time.perf_counter()
        angle = self._current_angle(exif)
        # A flushed frame: exposed after the call, with the controls in effect by then.
        gain = self._next_frame(angle)
        image = self.scene.photo(self.elevation_deg, angle, self._resolution, gain)
        exposure_us = round(_BASE_EXPOSURE_US * gain)
        exif_bytes = build_exif(
            exif, make="Scanner", model="Simulated camera", angle_deg=angle,
            exposure_time_us=exposure_us, analogue_gain=1.0,
        )
        buf = io.BytesIO()
        q = int(quality or self._quality)
        image.save(buf, "JPEG", quality=q, exif=exif_bytes)
        # A real sensor needs its exposure and readout time; rendering counts towards it.
        remaining = self._capture_seconds - (time.perf_counter() - started)
        if remaining > 0:
            self._sleep(remaining)
        atomic_write_bytes(path, buf.getvalue())
        return CaptureInfo(
            path=path,
            width=self._resolution[0],
            height=self._resolution[1],
            settings={
                "angle_deg": angle,
                "exposure_locked": self._locked is not None,
                "exposure_time_us": exposure_us,
                "analogue_gain": 1.0,
                "colour_gains": list(self._locked.colour_gains if self._locked
                                     else _COLOUR_GAINS),
                "lens_position": None,
                "quality": q,
            },
        )

    @property
    def elevation_deg(self) -> float | None:
        """The elevation the next photo is taken from (None: the scene's own)."""
        return float(self._elevation_source()) if self._elevation_source else None

    def prepare_elevation(self, elevation_deg: float | None) -> None:
        """Cast what does not turn for a new ring now (while the arm moves), not at its
        first frame, so frame times stay even."""
        self.scene.prepare(elevation_deg, self._resolution)

    def _current_angle(self, exif: dict[str, Any] | None) -> float:
        if self._angle_source is not None:
            return float(self._angle_source())
        if exif and exif.get("angle_deg") is not None:
            return float(exif["angle_deg"])
        return 0.0

    def _raise_injected_fault(self) -> None:
        fault = self._fault_from_file()
        sticky = False
        if fault is None and self._unplugged:
            fault = "unplugged"
        elif fault is None and self._fail_at is not None and self.captures == self._fail_at:
            fault = self._fault
            sticky = fault == "unplugged"  # an unplugged camera stays unplugged
        if fault is None:
            return
        if fault == "unplugged":
            self._unplugged = self._unplugged or sticky
            self._open = False
            raise CameraUnplugged()
        if fault == "timeout":
            self._sleep(self._capture_seconds)  # a timeout costs time before it fails
            raise CameraTimeout()
        if fault == "disk-full":
            raise OSError(errno.ENOSPC, DISK_FULL_MESSAGE)
        raise CameraError(
            f"The fault file {self._fault_file} asks for {fault!r}, which is not a known "
            f"fault: write one of {', '.join(FAULTS)}."
        )

    def _fault_from_file(self) -> str | None:
        # Checked on every capture, so another process can break (and mend) a running
        # worker by creating (and deleting) the file.
        if self._fault_file is None:
            return None
        try:
            text = self._fault_file.read_text(encoding="utf-8", errors="replace")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        return text.strip().lower() or "unplugged"

    def describe(self) -> dict[str, Any]:
        return {
            "type": "mock",
            "model": "Simulated camera",
            "sensor": "simulated",
            "resolution": list(self._resolution),
            "size_note": None,
            "capture_seconds": self._capture_seconds,
            "control_delay_frames": self._delay,
            **self.scene.describe(),
        }
