"""Errors raised by hardware drivers.

Every message is a sentence a maker can act on: it says what is wrong and what to check,
because it ends up on the web page and in `scanner hal check`, not only in a log.
"""

from __future__ import annotations


class HardwareError(Exception):
    """Base class for anything that went wrong talking to the scanner hardware."""

    default_message = "The scanner hardware reported a problem."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)


class CameraError(HardwareError):
    default_message = "The camera reported a problem."


class CameraUnplugged(CameraError):
    default_message = (
        "The camera is not answering: check the ribbon cable is pushed fully into both "
        "connectors with the contacts facing the right way, that the camera is not "
        "disabled in /boot/firmware/config.txt, then power the Pi off and on again."
    )


class CameraTimeout(CameraError):
    default_message = (
        "The camera took too long to take a photo: this is often a loose ribbon cable or a "
        "weak power supply (use the official 5 V supply), check both and try again."
    )


class TurntableError(HardwareError):
    default_message = "The turntable reported a problem."


class HardwareStopped(TurntableError):
    """A move or homing stopped between two steps because a stop was requested."""

    default_message = (
        "The turntable stopped because the scan was asked to stop; its position was saved, "
        "so the scan can be resumed."
    )


class LightError(HardwareError):
    default_message = "The light reported a problem."


DISK_FULL_MESSAGE = (
    "The SD card is full: there is no space left to save the photo. "
    "Delete old scans or use a bigger card."
)
