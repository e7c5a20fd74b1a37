"""Raspberry Pi camera on Picamera2 (libcamera).

picamera2 only exists on Raspberry Pi OS (`sudo apt install python3-picamera2`), so it is
imported when the camera opens, never at import time, and the class is injectable
(`picamera2_factory`) so tests drive this driver with a strict stand-in.

For photogrammetry every frame of a scan must be exposed the same way and be sharp:
- the photo size fits the sensor (no crop, no upscale) and the sensor mode covers the whole
  field of view; noise reduction is off (it smears the texture that matching needs);
- `lock_exposure` lets AE converge (AeState, or AeLocked on older libcamera) and the colour
  gains hold still, bounded by a timeout; `apply_exposure` sets those values (DigitalGain
  folded into AnalogueGain) and reads frames until they are in effect, so a resumed scan
  re-applies the saved values and matches the frames taken before;
- a capture uses a flushed request: its exposure starts after the call, i.e. after the
  platter settled;
- every blocking call has a timeout; a camera that does not answer is closed and raises
  CameraTimeout.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from hal.atomic import atomic_write_bytes
from hal.errors import CameraError, CameraTimeout, CameraUnplugged
from hal.exif import build_exif, replace_exif
from hal.interfaces import Camera, CaptureInfo, ExposureSettings
from hal.pi import exposure as ae
from hal.sensors import choose_mode, fit_size, focal_lengths
from hal.settings import CameraSettings

log = logging.getLogger(__name__)

AF_MODE_MANUAL = ae.AF_MODE_MANUAL
AF_MODE_AUTO = ae.AF_MODE_AUTO

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
        self._mode: dict[str, Any] | None = None
        self._size_note: str | None = None
        self._locked: ExposureSettings | None = None
        self._metering_converged: bool | None = None
        self._wanted: tuple[int, int] = settings.resolution

    # -- every blocking call goes through here ----------------------------------------------
    def _call(self, what: str, fn: Callable[..., Any], *args: Any, timeout: float,
              **kwargs: Any) -> Any:
        try:
            return fn(*args, wait=timeout, **kwargs)
        except TimeoutError as exc:  # concurrent.futures.TimeoutError is this on 3.11+
            self.close()  # a stuck camera is reopened on the next use
            raise CameraTimeout(
                f"The camera did not answer within {timeout:g} s while {what}: this is often "
                "a loose ribbon cable or a weak power supply (use the official 5 V supply), "
                "check both and try again."
            ) from exc
        except CameraError:
            raise
        except Exception as exc:
            self.close()
            raise CameraError(
                f"The camera failed while {what} ({exc}): check the ribbon cable and try "
                "again."
            ) from exc

    def _metadata(self, what: str) -> dict[str, Any]:
        return self._call(what, self._cam.capture_metadata,
                          timeout=self.settings.capture_timeout_s) or {}

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
            self._configure(cam)
        except Exception as exc:
            _release(cam)
            raise CameraError(
                f"The camera was found but would not start ({exc}). Check the resolution in "
                "config/hal.toml suits this camera, then power the Pi off and on again."
            ) from exc
        self._cam = cam
        try:
            for _ in range(self.settings.settle_frames):
                self._metadata("starting")
        except CameraError:
            self.close()
            raise

    def _configure(self, cam: Any) -> None:
        self._model = str((getattr(cam, "camera_properties", None) or {}).get("Model", ""))
        controls_info = getattr(cam, "camera_controls", None) or {}
        full = tuple(cam.sensor_resolution)
        size, self._size_note = tuple(self._wanted), None
        if 0 in size:
            size = full
        elif self.settings.fit_to_sensor:
            size, self._size_note = fit_size(size, full, self._model or "camera")
            if self._size_note:
                log.warning("Photo size: %s", self._size_note)
        modes = list(getattr(cam, "sensor_modes", None) or [])
        self._mode = choose_mode(size, modes, full)
        sensor = {} if self._mode is None else {"output_size": tuple(self._mode["size"]),
                                                "bit_depth": self._mode["bit_depth"]}
        controls = {}
        if "NoiseReductionMode" in controls_info:
            controls["NoiseReductionMode"] = ae.NOISE_REDUCTION[self.settings.noise_reduction]
        cam.configure(cam.create_still_configuration(main={"size": tuple(size)},
                                                     sensor=sensor, controls=controls))
        self._has_af = "AfMode" in controls_info
        if self._has_af:
            if self.settings.lens_position is None:
                cam.set_controls({"AfMode": AF_MODE_AUTO})  # focus once, at lock time
            else:
                cam.set_controls(
                    {"AfMode": AF_MODE_MANUAL, "LensPosition": self.settings.lens_position})
        cam.start()
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
        """Let AE/AWB (and autofocus) settle on the current view, then hold those values."""
        self.open()
        cam, s = self._cam, self.settings
        self._call("metering", lambda wait: cam.set_controls(ae.auto_controls(
            cam.camera_controls)), timeout=s.capture_timeout_s)
        if self._has_af and s.lens_position is None:
            if not self._call("focusing", cam.autofocus_cycle, timeout=s.autofocus_timeout_s):
                log.warning("Autofocus did not lock; photos may be soft")
        md: dict[str, Any] = {}
        gains: list[tuple[float, float]] = []
        deadline = time.monotonic() + s.metering_timeout_s
        self._metering_converged = False
        for _ in range(s.metering_frames):
            md = self._metadata("metering the exposure")
            with contextlib.suppress(KeyError, TypeError, ValueError):
                gains.append(tuple(float(g) for g in md["ColourGains"]))  # type: ignore[arg-type]
            if ae.ae_converged(md) and ae.gains_stable(gains, s.awb_stable_frames,
                                                        s.awb_tolerance):
                self._metering_converged = True
                break
            if time.monotonic() > deadline:
                break
        if not self._metering_converged:
            log.warning("Exposure or white balance had not settled after %g s; locking the "
                        "last values", s.metering_timeout_s)
        try:
            metered = ExposureSettings(
                exposure_time_us=int(md["ExposureTime"]),
                analogue_gain=ae.total_gain(md),
                colour_gains=tuple(float(g) for g in md["ColourGains"]),  # type: ignore[arg-type]
                lens_position=None if md.get("LensPosition", s.lens_position) is None
                else float(md.get("LensPosition", s.lens_position)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CameraError(
                "The camera did not report its exposure, so it cannot be locked for the "
                f"scan (missing {exc}). Update Raspberry Pi OS and try again."
            ) from exc
        return self.apply_exposure(metered)

    def apply_exposure(self, exposure: ExposureSettings) -> ExposureSettings:
        """Hold exactly these values (e.g. the ones a scan saved before an interruption),
        confirmed by reading frames until they are in effect."""
        self.open()
        cam, s = self._cam, self.settings
        info = cam.camera_controls
        gain = ae.clamp(float(exposure.analogue_gain), info.get("AnalogueGain"))
        if abs(gain - exposure.analogue_gain) > 1e-6:
            log.warning("Gain %.2f is beyond the sensor's analogue range; using %.2f (photos "
                        "will be darker): add light", exposure.analogue_gain, gain)
        exposure_us = int(ae.clamp(int(exposure.exposure_time_us), info.get("ExposureTime")))
        gains = (float(exposure.colour_gains[0]), float(exposure.colour_gains[1]))
        lens = exposure.lens_position if self._has_af else None
        self._call("locking the exposure", lambda wait: cam.set_controls(ae.lock_controls(
            info, exposure_us, gain, gains, lens)), timeout=s.capture_timeout_s)
        deadline = time.monotonic() + s.lock_timeout_s
        md: dict[str, Any] = {}
        while True:
            md = self._metadata("locking the exposure")
            if ae.in_effect(md, exposure_us, gain, gains, lens, s.lock_tolerance):
                break
            if time.monotonic() > deadline:
                raise CameraError(
                    f"The camera did not take the locked exposure within {s.lock_timeout_s:g} "
                    f"s (asked {exposure_us} µs at gain {gain:.2f}, it reports "
                    f"{md.get('ExposureTime')} µs at gain {md.get('AnalogueGain')}): restart "
                    "the scan, and update Raspberry Pi OS if it happens again.")
        self._locked = ExposureSettings(exposure_time_us=exposure_us, analogue_gain=gain,
                                        colour_gains=gains, lens_position=lens)
        return self._locked

    def unlock_exposure(self) -> None:
        self._locked = None
        if self._cam is not None:
            self._cam.set_controls(ae.auto_controls(self._cam.camera_controls))

    # -- capture -----------------------------------------------------------------------
    def capture(
        self, path: Path, exif: dict[str, Any] | None = None, quality: int | None = None
    ) -> CaptureInfo:
        path = Path(path)
        self.open()
        cam = self._cam
        q = int(quality or self.settings.jpeg_quality)
        buf = io.BytesIO()
        cam.options["quality"] = q
        # flush=True: a frame whose exposure started after this call, not one exposed while
        # the platter was still moving.
        request = self._call("taking a photo", cam.capture_request,
                             timeout=self.settings.capture_timeout_s, flush=True)
        try:
            md = request.get_metadata() or {}
            request.save("main", buf, format="jpeg")
        except Exception as exc:
            self.close()
            raise CameraError(f"The camera failed while saving a photo ({exc}).") from exc
        finally:
            with contextlib.suppress(Exception):
                request.release()
        data = buf.getvalue()
        try:
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
        except Exception as exc:
            raise CameraError("The camera returned a photo that is not a valid JPEG.") from exc
        focal, focal35 = self._focal()
        exif_bytes = build_exif(
            exif, make="Raspberry Pi", model=self._model or "Raspberry Pi camera",
            exposure_time_us=md.get("ExposureTime"), analogue_gain=md.get("AnalogueGain"),
            focal_length_mm=focal, focal_length_35mm=focal35,
        )
        atomic_write_bytes(path, replace_exif(data, exif_bytes))
        gains = md.get("ColourGains")
        return CaptureInfo(path=path, width=width, height=height, settings={
            "exposure_locked": self._locked is not None,
            "exposure_time_us": md.get("ExposureTime"),
            "analogue_gain": md.get("AnalogueGain"),
            "digital_gain": md.get("DigitalGain"),
            "colour_gains": None if gains is None else [float(g) for g in gains],
            "lens_position": md.get("LensPosition"),
            "lux": md.get("Lux"),
            "quality": q,
        })

    def _focal(self) -> tuple[float | None, int | None]:
        crop = (self._mode or {}).get("crop_limits")
        return focal_lengths(self._model, self.settings.focal_length_mm, crop)

    def describe(self) -> dict[str, Any]:
        focal, focal35 = self._focal()
        mode = self._mode or {}
        return {
            "type": "picamera2",
            "model": self._model or "not opened yet",
            "sensor": self._model or None,
            "camera_num": self.settings.camera_num,
            "resolution": list(self.resolution),
            "requested_resolution": list(self._wanted),
            "size_note": self._size_note,
            "sensor_mode": {k: list(v) if isinstance(v, tuple) else v for k, v in mode.items()
                            if k in ("size", "bit_depth", "fps", "crop_limits", "unpacked")},
            "noise_reduction": self.settings.noise_reduction,
            "focus": "auto" if self.settings.lens_position is None else "manual",
            "lens_position": self.settings.lens_position,
            "focal_length_mm": focal,
            "focal_length_35mm": focal35,
            "metering_converged": self._metering_converged,
            "jpeg_quality": self.settings.jpeg_quality,
        }


def _release(cam: Any) -> None:
    """Stop and close a Picamera2, whatever state it is in; never raises."""
    for step in ("stop", "close"):
        with contextlib.suppress(Exception):
            getattr(cam, step)()
