"""Raspberry Pi camera on Picamera2 (libcamera).

picamera2 only exists on Raspberry Pi OS (`sudo apt install python3-picamera2`), so it is
imported when the camera opens, never at import time, and the class is injectable
(`picamera2_factory`) so tests drive this driver with a stand-in.

For photogrammetry every frame of a scan must be exposed the same way: `lock_exposure`
lets auto-exposure and auto white balance settle once, reads what they chose from the frame
metadata, then switches them off with those values fixed.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from hal.atomic import atomic_write_bytes
from hal.errors import CameraError, CameraTimeout, CameraUnplugged
from hal.exif import build_exif, replace_exif
from hal.interfaces import Camera, CaptureInfo, ExposureSettings
from hal.settings import CameraSettings

log = logging.getLogger(__name__)

# libcamera.controls.AfModeEnum values, as plain ints so libcamera need not be imported.
AF_MODE_MANUAL = 0
AF_MODE_AUTO = 1

PICAMERA2_MISSING = (
    "The Python camera library (picamera2) is not installed: on Raspberry Pi OS run "
    "`sudo apt install python3-picamera2`, and create the virtualenv with "
    "--system-site-packages so it can see it (`make run` does this on a Pi)."
)


def import_picamera2() -> Callable[..., Any]:
    try:
        from picamera2 import Picamera2  # only here: the library exists on a Pi only
    except ImportError as exc:
        raise CameraError(PICAMERA2_MISSING) from exc
    return Picamera2


class PiCamera(Camera):
    def __init__(
        self,
        settings: CameraSettings,
        picamera2_factory: Callable[..., Any] | None = None,
    ) -> None:
        self.settings = settings
        self._factory = picamera2_factory
        self._cam: Any = None
        self._size: tuple[int, int] | None = None
        self._model: str | None = None
        self._has_af = False
        self._locked: ExposureSettings | None = None
        self._wanted: tuple[int, int] = settings.resolution

    # -- lifecycle ---------------------------------------------------------------------
    def open(self) -> None:
        if self._cam is not None:
            return
        factory = self._factory or import_picamera2()
        info = getattr(factory, "global_camera_info", None)
        if callable(info):
            try:
                found = info()
            except Exception as exc:
                raise CameraUnplugged() from exc
            if not found:
                raise CameraUnplugged()
        try:
            cam = factory(self.settings.camera_num)
        except Exception as exc:  # Picamera2 says "Camera __init__ sequence did not complete"
            raise CameraUnplugged() from exc
        try:
            size = self._wanted
            if 0 in size:
                size = tuple(cam.sensor_resolution)
            cam.configure(cam.create_still_configuration(main={"size": tuple(size)}))
            self._has_af = "AfMode" in (getattr(cam, "camera_controls", None) or {})
            if self._has_af:
                if self.settings.lens_position is None:
                    cam.set_controls({"AfMode": AF_MODE_AUTO})  # focus once, at lock time
                else:
                    cam.set_controls(
                        {"AfMode": AF_MODE_MANUAL, "LensPosition": self.settings.lens_position}
                    )
            cam.start()
            for _ in range(self.settings.settle_frames):
                cam.capture_metadata()
            self._model = str((getattr(cam, "camera_properties", None) or {}).get("Model", ""))
        except Exception as exc:
            _release(cam)
            raise CameraError(
                f"The camera was found but would not start ({exc}). Check the resolution in "
                "config/hal.toml suits this camera, then power the Pi off and on again."
            ) from exc
        self._cam = cam
        self._size = (int(size[0]), int(size[1]))

    def close(self) -> None:
        cam, self._cam = self._cam, None
        self._locked = None
        if cam is not None:
            _release(cam)

    @property
    def is_open(self) -> bool:
        return self._cam is not None

    @property
    def resolution(self) -> tuple[int, int]:
        return self._size or self._wanted

    def set_resolution(self, size: tuple[int, int] | None) -> None:
        wanted = self.settings.resolution if size is None else (int(size[0]), int(size[1]))
        if wanted == self._wanted:
            return
        self._wanted = wanted
        self._size = None
        self.close()  # reopened at the new size on next use

    # -- exposure ----------------------------------------------------------------------
    @property
    def locked_exposure(self) -> ExposureSettings | None:
        return self._locked

    def lock_exposure(self) -> ExposureSettings:
        """Let AE/AWB (and autofocus) settle on the current view, then freeze them."""
        self.open()
        cam = self._cam
        try:
            cam.set_controls({"AeEnable": True, "AwbEnable": True})
            if self._has_af and self.settings.lens_position is None:
                if not cam.autofocus_cycle():
                    log.warning("Autofocus did not lock; photos may be soft")
            md: dict[str, Any] = {}
            for _ in range(self.settings.metering_frames):
                md = cam.capture_metadata()
                if md.get("AeLocked"):  # AE has converged: no need to wait longer
                    break
            try:
                exposure = int(md["ExposureTime"])
                gain = float(md["AnalogueGain"])
                red, blue = (float(g) for g in md["ColourGains"])
            except (KeyError, TypeError, ValueError) as exc:
                raise CameraError(
                    "The camera did not report its exposure, so it cannot be locked for the "
                    f"scan (missing {exc}). Update Raspberry Pi OS and try again."
                ) from exc
            cam.set_controls({
                "AeEnable": False,
                "ExposureTime": exposure,
                "AnalogueGain": gain,
                "AwbEnable": False,
                "ColourGains": (red, blue),
            })
            for _ in range(self.settings.settle_frames):  # frames already in flight
                cam.capture_metadata()
        except CameraError:
            raise
        except Exception as exc:
            self.close()
            raise CameraError(f"The camera failed while metering the exposure ({exc}).") from exc
        lens = md.get("LensPosition", self.settings.lens_position)
        self._locked = ExposureSettings(
            exposure_time_us=exposure, analogue_gain=gain, colour_gains=(red, blue),
            lens_position=None if lens is None else float(lens),
        )
        return self._locked

    def unlock_exposure(self) -> None:
        self._locked = None
        if self._cam is not None:
            self._cam.set_controls({"AeEnable": True, "AwbEnable": True})

    # -- capture -----------------------------------------------------------------------
    def capture(
        self, path: Path, exif: dict[str, Any] | None = None, quality: int | None = None
    ) -> CaptureInfo:
        path = Path(path)
        self.open()
        cam = self._cam
        q = int(quality or self.settings.jpeg_quality)
        buf = io.BytesIO()
        try:
            cam.options["quality"] = q
            job = cam.capture_file(buf, format="jpeg", wait=False)
            md = cam.wait(job, timeout=self.settings.capture_timeout_s) or {}
        except TimeoutError as exc:
            self.close()  # a stuck camera is reopened on the next capture
            raise CameraTimeout(
                f"The camera did not deliver a photo within {self.settings.capture_timeout_s:g} "
                "s: this is often a loose ribbon cable or a weak power supply (use the "
                "official 5 V supply), check both and try again."
            ) from exc
        except Exception as exc:
            self.close()
            raise CameraError(
                f"The camera failed while taking a photo ({exc}): check the ribbon cable "
                "and try again."
            ) from exc
        data = buf.getvalue()
        try:
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
        except Exception as exc:
            raise CameraError("The camera returned a photo that is not a valid JPEG.") from exc
        exif_bytes = build_exif(
            exif, make="Raspberry Pi", model=self._model or "Raspberry Pi camera",
            exposure_time_us=md.get("ExposureTime"), analogue_gain=md.get("AnalogueGain"),
        )
        atomic_write_bytes(path, replace_exif(data, exif_bytes))
        gains = md.get("ColourGains")
        return CaptureInfo(
            path=path,
            width=width,
            height=height,
            settings={
                "exposure_locked": self._locked is not None,
                "exposure_time_us": md.get("ExposureTime"),
                "analogue_gain": md.get("AnalogueGain"),
                "colour_gains": None if gains is None else [float(g) for g in gains],
                "lens_position": md.get("LensPosition"),
                "lux": md.get("Lux"),
                "quality": q,
            },
        )

    def describe(self) -> dict[str, Any]:
        return {
            "type": "picamera2",
            "model": self._model or "not opened yet",
            "camera_num": self.settings.camera_num,
            "resolution": list(self.resolution),
            "focus": "auto" if self.settings.lens_position is None else "manual",
            "lens_position": self.settings.lens_position,
            "jpeg_quality": self.settings.jpeg_quality,
        }


def _release(cam: Any) -> None:
    """Stop and close a Picamera2, whatever state it is in; never raises."""
    for step in ("stop", "close"):
        with contextlib.suppress(Exception):
            getattr(cam, step)()
