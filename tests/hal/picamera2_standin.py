"""A stand-in for picamera2.Picamera2 that records the calls the real one would get.

It mirrors the signatures the driver uses (create_still_configuration(main=...),
configure, set_controls, start, capture_metadata, autofocus_cycle,
capture_file(file_output, name="main", format=None, wait=None, signal_function=None),
wait(job, timeout=None), stop, close) and writes a real JPEG, with picamera2-style EXIF,
into the file object it is given.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image


def camera_jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    img = Image.new("RGB", size, (30, 90, 160))
    img.paste((240, 200, 40), (8, 8, size[0] // 2, size[1] // 2))
    exif = Image.Exif()
    exif[0x010F] = "picamera2 original"
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85, exif=exif.tobytes())
    return buf.getvalue()


# Frames as auto-exposure converges: the first two are eaten by the settle frames after
# start(), the next three by lock_exposure() (it stops at the first AeLocked frame).
DEFAULT_METADATA = [
    {"ExposureTime": 60000, "AnalogueGain": 8.0, "ColourGains": (1.0, 1.0), "AeLocked": False},
    {"ExposureTime": 45000, "AnalogueGain": 6.0, "ColourGains": (1.2, 1.1), "AeLocked": False},
    {"ExposureTime": 30000, "AnalogueGain": 4.0, "ColourGains": (1.5, 1.2), "AeLocked": False},
    {"ExposureTime": 15000, "AnalogueGain": 2.5, "ColourGains": (1.8, 1.4), "AeLocked": False},
    {"ExposureTime": 12000, "AnalogueGain": 2.0, "ColourGains": (1.9, 1.4), "AeLocked": True,
     "LensPosition": 3.2, "Lux": 400.0},
]


class StandInPicamera2:
    def __init__(self, factory: Picamera2Factory, camera_num: int = 0) -> None:
        self.factory = factory
        self.calls = factory.calls
        self.camera_num = camera_num
        self.options: dict[str, Any] = {}
        self.sensor_resolution = (4608, 2592)
        self.camera_properties = {"Model": "imx708"}
        self.camera_controls = {"AfMode": (0, 2, 0), "LensPosition": (0.0, 15.0, 1.0)} \
            if factory.has_autofocus else {"ExposureTime": (1, 1000000, 1000)}
        self._frames = list(factory.metadata)
        self._last: dict[str, Any] = {}

    def _record(self, name: str, *args: Any) -> None:
        self.calls.append((name, *args))
        if name in self.factory.fail_on:
            raise self.factory.fail_on[name]

    def create_still_configuration(self, main: dict | None = None, **kwargs: Any) -> dict:
        self._record("create_still_configuration", main)
        return {"use_case": "still", "main": main}

    def configure(self, config: dict) -> None:
        self._record("configure", config)

    def set_controls(self, controls: dict) -> None:
        self._record("set_controls", dict(controls))

    def start(self) -> None:
        self._record("start")

    def stop(self) -> None:
        self._record("stop")

    def close(self) -> None:
        self._record("close")

    def autofocus_cycle(self) -> bool:
        self._record("autofocus_cycle")
        return True

    def capture_metadata(self) -> dict[str, Any]:
        self._record("capture_metadata")
        if self._frames:
            self._last = self._frames.pop(0)
        return dict(self._last)

    def capture_file(self, file_output, name="main", format=None, wait=None,
                     signal_function=None) -> str:
        self._record("capture_file", {"name": name, "format": format, "wait": wait,
                                      "quality": self.options.get("quality")})
        file_output.write(self.factory.jpeg)
        return "job"

    def wait(self, job: str, timeout: float | None = None) -> dict[str, Any]:
        self._record("wait", timeout)
        return dict(self._last)


class Picamera2Factory:
    """Passed as `picamera2_factory`: calling it "opens" a camera like Picamera2(n) does."""

    def __init__(self, *, has_autofocus: bool = True, metadata: list[dict] | None = None,
                 fail_on: dict[str, Exception] | None = None, cameras: int = 1,
                 open_error: Exception | None = None) -> None:
        self.has_autofocus = has_autofocus
        self.metadata = DEFAULT_METADATA if metadata is None else metadata
        self.fail_on = dict(fail_on or {})
        self.cameras = cameras
        self.open_error = open_error
        self.jpeg = camera_jpeg()
        self.calls: list[tuple] = []
        self.instances: list[StandInPicamera2] = []

    def global_camera_info(self) -> list[dict]:
        return [{"Model": "imx708", "Num": i} for i in range(self.cameras)]

    def __call__(self, camera_num: int = 0) -> StandInPicamera2:
        self.calls.append(("Picamera2", camera_num))
        if self.open_error is not None:
            raise self.open_error
        cam = StandInPicamera2(self, camera_num)
        self.instances.append(cam)
        return cam

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]
