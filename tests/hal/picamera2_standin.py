"""A stand-in for picamera2.Picamera2 as strict as the real one, for driving hal.pi.camera.

What it holds the driver to, from picamera2 0.3.x and the Raspberry Pi libcamera:
- controls and their (min, max, default) come from a real camera's `camera_controls`
  (tests/hal/data/<sensor>.json); an unknown control raises RuntimeError("Control X is not
  advertised by libcamera") as Picamera2.controls does; values out of range are clamped,
  as libcamera's IPA clamps them (the frames report the clamped value);
- new controls reach the frames `control_delay` frames later (2 by default);
- metadata carries `AeState` (0 idle, 1 searching, 2 converged), or `AeLocked` with
  `legacy_ae=True` (libcamera before 2025); AE settles over a few frames, AWB slower, and
  the AE splits its gain into AnalogueGain and DigitalGain;
- blocking calls take `wait=` like the real ones: None/True wait for ever, False returns a
  Job (`picam2.wait(job, timeout)`), a number is a timeout that raises TimeoutError. A camera
  that never answers (`hang=True`) sleeps out the timeout, then raises; waiting for ever on
  it fails the test instead of hanging it;
- one completed request is always queued, exposed before the call; `flush=True` skips to a
  frame whose exposure started after the call (what a settled platter needs);
- `create_still_configuration` returns a dict shaped like the real one (NoiseReductionMode
  HighQuality and FrameDurationLimits defaults, merged under the caller's controls).
"""

from __future__ import annotations

import functools
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

DATA = Path(__file__).parent / "data"
AE_START, AE_TARGET = (60000, 8.0, 1.0), (12000, 2.0, 1.1)  # (exposure us, analogue, digital)
AWB_START, AWB_TARGET = (1.0, 1.0), (1.9, 1.4)


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


@functools.lru_cache(maxsize=4)
def sensor(name: str) -> dict[str, Any]:
    data = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    data["camera_controls"] = {k: _tuples(v) for k, v in data["camera_controls"].items()}
    data["sensor_modes"] = [{k: _tuples(v) for k, v in m.items()} for m in data["sensor_modes"]]
    return data


@functools.lru_cache(maxsize=8)
def camera_jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    img = Image.new("RGB", size, (30, 90, 160))
    img.paste((240, 200, 40), (size[0] // 8, size[1] // 8, size[0] // 2, size[1] // 2))
    exif = Image.Exif()
    exif[0x010F] = "picamera2 original"
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85, exif=exif.tobytes())
    return buf.getvalue()


class Job:
    def __init__(self, run: Callable[[float | None], Any]) -> None:
        self._run = run

    def get_result(self, timeout: float | None = None) -> Any:
        return self._run(timeout)


class Request:
    """A CompletedRequest: metadata, save(), release() exactly once."""

    def __init__(self, cam: StandInPicamera2, metadata: dict[str, Any], called_ns: int) -> None:
        self.cam, self.metadata, self.called_ns = cam, metadata, called_ns
        self.exposure_start_ns = metadata["SensorTimestamp"] - 1000 * metadata["ExposureTime"]
        self.released = False

    def get_metadata(self) -> dict[str, Any]:
        return dict(self.metadata)

    def save(self, name: str, file_output: Any, format: str | None = None,
             exif_data: dict | None = None) -> None:
        if name not in ("main",) or self.cam.config is None:
            raise RuntimeError(f"Stream {name!r} is not defined")
        self.cam._record("save", name, format, self.cam.options.get("quality", 90))
        file_output.write(self.cam.factory.jpeg_for(tuple(self.cam.config["main"]["size"])))

    def release(self) -> None:
        if self.released:
            raise RuntimeError("CompletedRequest: lock now has negative ref_count")
        self.released = True


class StandInPicamera2:
    def __init__(self, factory: Picamera2Factory, camera_num: int = 0) -> None:
        data = sensor(factory.sensor)
        self.factory, self.calls, self.camera_num = factory, factory.calls, camera_num
        self.clock = lambda: factory.now_ns
        self.options: dict[str, Any] = {}
        self.camera_properties = dict(data["camera_properties"])
        self.camera_controls = {k: v for k, v in data["camera_controls"].items()
                                if k not in factory.drop_controls}
        self._modes = data["sensor_modes"]
        self.sensor_resolution = tuple(data["sensor_resolution"])
        self.config: dict[str, Any] | None = None
        self.started = False
        self.closed = False
        self.frame = 0
        self.requests: list[Request] = []
        self._pending: list[tuple[int, dict[str, Any]]] = []
        self._controls: dict[str, Any] = {}  # in effect now
        self._queued: dict[str, Any] | None = None  # the completed request waiting

    # -- setup ----------------------------------------------------------------------------
    def _record(self, name: str, *args: Any) -> None:
        self.calls.append((name, *args))
        if name in self.factory.fail_on:
            raise self.factory.fail_on[name]

    @property
    def sensor_modes(self) -> list[dict[str, Any]]:
        self._record("sensor_modes")
        return [dict(m) for m in self._modes]

    def _check_names(self, controls: dict[str, Any]) -> None:
        for name in controls:
            if name not in self.camera_controls:
                raise RuntimeError(f"Control {name} is not advertised by libcamera")

    def create_still_configuration(self, main: dict | None = None, lores: dict | None = None,
                                   raw: dict | None = None, transform: Any = None,
                                   colour_space: Any = None, buffer_count: int = 1,
                                   controls: dict | None = None, display: Any = None,
                                   encode: Any = None, queue: bool = True,
                                   sensor: dict | None = None, use_case: str = "still") -> dict:
        self._record("create_still_configuration", dict(main or {}), dict(sensor or {}),
                     dict(controls or {}))
        size = tuple((main or {}).get("size", self.sensor_resolution))
        defaults = {"NoiseReductionMode": 2, "FrameDurationLimits": (100, 1000000 * 1000)}
        return {"use_case": use_case, "transform": transform or "<libcamera.Transform>",
                "colour_space": colour_space or "<libcamera.ColorSpace 'sYCC'>",
                "buffer_count": buffer_count, "queue": queue,
                "main": {"format": "BGR888", "size": size, "preserve_ar": True,
                         **(main or {})},
                "lores": lores, "raw": {"format": self._modes[-1]["unpacked"], "size": size,
                                         **(raw or {})},
                "controls": defaults | dict(controls or {}), "sensor": dict(sensor or {}),
                "display": display, "encode": encode}

    def configure(self, config: dict) -> None:
        self._record("configure", config)
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        for key in ("use_case", "main", "controls", "sensor", "buffer_count"):
            if key not in config:
                raise RuntimeError(f"configuration lacks {key!r}: use create_still_configuration")
        self._check_names(config["controls"])
        wanted = config["sensor"].get("output_size")
        if wanted and tuple(wanted) not in [m["size"] for m in self._modes]:
            raise RuntimeError(f"sensor output_size {wanted} is not a mode of this sensor")
        self.config = config
        self._controls = {k: self._clamp(k, v) for k, v in config["controls"].items()}

    def camera_configuration(self) -> dict | None:
        return self.config

    def start(self) -> None:
        self._record("start")
        if self.config is None:
            raise RuntimeError("Camera has not been configured")
        self.started = True

    def stop(self) -> None:
        self._record("stop")
        self.started = False

    def close(self) -> None:
        self._record("close")
        self.started, self.closed = False, True

    def set_controls(self, controls: dict) -> None:
        self._record("set_controls", dict(controls))
        self._check_names(controls)
        self._pending.append((self.frame + self.factory.control_delay, dict(controls)))

    # -- the sensor -----------------------------------------------------------------------
    def _clamp(self, name: str, value: Any) -> Any:
        low, high, _ = self.camera_controls[name]
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and isinstance(low, (int, float)):
            return type(value)(min(max(value, low), high))
        if name == "ColourGains":
            return tuple(min(max(float(g), low), high) for g in value)
        return value

    def _next_frame(self) -> dict[str, Any]:
        self.frame += 1
        for _when, controls in [p for p in self._pending if p[0] <= self.frame]:
            self._controls.update({k: self._clamp(k, v) for k, v in controls.items()})
        self._pending = [p for p in self._pending if p[0] > self.frame]
        c, f = self._controls, self.factory
        auto = c.get("AeEnable", True) and c.get("ExposureTimeMode", 0) == 0 \
            and c.get("AnalogueGainMode", 0) == 0
        t = min(1.0, self.frame / f.ae_frames)
        ae = [a + (b - a) * t for a, b in zip(AE_START, AE_TARGET, strict=True)]
        exposure = int(ae[0]) if auto else int(c.get("ExposureTime", ae[0]))
        analogue, digital = (ae[1], ae[2]) if auto else (float(c.get("AnalogueGain", 1.0)), 1.0)
        if c.get("AwbEnable", True):
            w = min(1.0, self.frame / f.awb_frames)
            wobble = 1 + f.awb_wobble * (-1) ** self.frame  # a flickering scene
            gains = tuple((a + (b - a) * w) * wobble
                          for a, b in zip(AWB_START, AWB_TARGET, strict=True))
        else:
            gains = tuple(c.get("ColourGains", AWB_TARGET))
        md: dict[str, Any] = {
            "ExposureTime": exposure, "AnalogueGain": analogue, "DigitalGain": digital,
            "ColourGains": gains, "ColourTemperature": 4800, "Lux": 400.0,
            "FrameDuration": 33333, "ScalerCrop": self.camera_controls["ScalerCrop"][2],
            "SensorTimestamp": 0,
        }
        converged = not auto or t >= 1.0
        if f.legacy_ae:
            md["AeLocked"] = auto and converged
        else:
            md["AeState"] = 0 if not auto else (2 if converged else 1)
        if "LensPosition" in self.camera_controls:
            md["LensPosition"] = float(c.get("LensPosition", 1.0))
            md["AfState"] = 2 if c.get("AfMode", 0) == 1 else 0
        # Simulated time: each frame takes a frame period; its exposure ends at its timestamp.
        f.now_ns += 33_333_000
        md["SensorTimestamp"] = f.now_ns
        return md

    def _take(self, flush: bool, called_ns: int) -> dict[str, Any]:
        if not self.started:
            raise AssertionError("the camera was not started: this would block for ever")
        md = self._queued or self._next_frame()
        while flush and md["SensorTimestamp"] - 1000 * md["ExposureTime"] < called_ns:
            md = self._next_frame()
        self._queued = self._next_frame()  # the next one completes while we work
        return md

    # -- blocking calls, with picamera2's wait= semantics -------------------------------------
    def _dispatch(self, what: str, work: Callable[[], Any], wait: Any,
                  signal_function: Any = None) -> Any:
        if wait is None:
            wait = signal_function is None

        def run(timeout: float | None) -> Any:
            if self.factory.hang:
                if timeout is None:
                    raise AssertionError(f"{what} on a camera that never answers, without a "
                                         "timeout: the real one would block for ever")
                time.sleep(timeout)
                raise TimeoutError()
            return work()

        if wait is False:
            return Job(run)
        return run(None if wait is True else float(wait))

    def wait(self, job: Job, timeout: float | None = None) -> Any:
        self._record("wait", timeout)
        return job.get_result(timeout)

    def capture_metadata(self, wait: Any = None, signal_function: Any = None) -> Any:
        self._record("capture_metadata", wait)
        called = self.clock()
        return self._dispatch("capture_metadata", lambda: self._take(False, called), wait,
                              signal_function)

    def capture_request(self, wait: Any = None, signal_function: Any = None,
                        flush: Any = None) -> Any:
        self._record("capture_request", wait, flush)
        called = self.clock()

        def work() -> Request:
            request = Request(self, self._take(bool(flush), called), called)
            self.requests.append(request)
            return request

        return self._dispatch("capture_request", work, wait, signal_function)

    def capture_file(self, file_output: Any, name: str = "main", format: str | None = None,
                     wait: Any = None, signal_function: Any = None,
                     exif_data: dict | None = None) -> Any:
        self._record("capture_file", wait)
        called = self.clock()

        def work() -> dict[str, Any]:
            md = self._take(False, called)
            file_output.write(self.factory.jpeg_for(tuple(self.config["main"]["size"])))
            return md

        return self._dispatch("capture_file", work, wait, signal_function)

    def autofocus_cycle(self, wait: Any = None, signal_function: Any = None) -> Any:
        self._record("autofocus_cycle", wait)
        self.set_controls({"AfMode": 1, "AfTrigger": 0})  # raises without autofocus
        return self._dispatch("autofocus_cycle", lambda: self.factory.focus_ok, wait,
                              signal_function)


class Picamera2Factory:
    """Passed as `picamera2_factory`: calling it "opens" a camera like Picamera2(n) does."""

    def __init__(self, sensor: str = "imx708", *, legacy_ae: bool = False,
                 fail_on: dict[str, Exception] | None = None, cameras: int = 1,
                 open_error: Exception | None = None, control_delay: int = 2,
                 ae_frames: int = 3, awb_frames: int = 6, hang: bool = False,
                 focus_ok: bool = True, awb_wobble: float = 0.0,
                 drop_controls: tuple[str, ...] = ()) -> None:
        self.sensor, self.legacy_ae, self.hang, self.focus_ok = sensor, legacy_ae, hang, focus_ok
        self.fail_on = dict(fail_on or {})
        self.cameras, self.open_error = cameras, open_error
        self.control_delay, self.ae_frames, self.awb_frames = control_delay, ae_frames, awb_frames
        self.awb_wobble = awb_wobble
        self.drop_controls = drop_controls  # e.g. ("AeEnable",): upstream libcamera 0.5
        self.now_ns = 10**12  # the simulated clock the frames' SensorTimestamps use
        self.calls: list[tuple] = []
        self.instances: list[StandInPicamera2] = []

    def jpeg_for(self, size: tuple[int, int]) -> bytes:
        return camera_jpeg(size)  # the configured size, as the real ISP delivers it

    def global_camera_info(self) -> list[dict]:
        info = sensor(self.sensor)["global_camera_info"]
        return [{**info, "Num": i} for i in range(self.cameras)]

    def __call__(self, camera_num: int = 0) -> StandInPicamera2:
        self.calls.append(("Picamera2", camera_num))
        if self.open_error is not None:
            raise self.open_error
        cam = StandInPicamera2(self, camera_num)
        self.instances.append(cam)
        return cam

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]
