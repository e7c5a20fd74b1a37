"""The web's side of the preview: relays the frames the worker publishes (rig/channel.py) as
an MJPEG stream (multipart/x-mixed-replace) or one JPEG. While a scan (or a calibration) has
the rig, it shows the scan's last frame instead, read from its thumbnail on disk. Every
stream keeps the preview's watch key fresh while its client reads; when the client goes,
the next write fails, the stream ends, and the preview job ends a few seconds later."""

from __future__ import annotations

import io
import logging
import textwrap
import threading
import time
from collections.abc import Iterator
from functools import cache

from sqlalchemy import select

from scanner_app.config import current_settings
from scanner_app.models import Capture
from scanner_app.platform import queues
from scanner_app.platform.errors import Conflict, ServiceUnavailable
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import current_storage
from scanner_app.rig import channel, service
from scanner_app.scans import service as scans

log = logging.getLogger("scanner.preview")

BOUNDARY = "scannerframe"
MIMETYPE = f"multipart/x-mixed-replace; boundary={BOUNDARY}"
POLL_SECONDS = 0.05
RESEND_SECONDS = 1.0  # the same frame again: keeps the stream alive and notices a gone client
CHECK_SECONDS = 1.0  # how often the stream looks at the scan and the preview job
SNAPSHOT_WAIT_SECONDS = 10.0
MAX_STREAM_SECONDS = 3600.0  # a forgotten tab does not hold a request thread for ever
# Each open stream holds one of the web server's request threads (8): a few tabs must not
# starve the rest of the station (its pages, the API, /healthz).
MAX_STREAMS = 3
TOO_MANY = (f"{MAX_STREAMS} previews are open already, so this one was not started. Close "
            "the Rig page in another tab or on another device, then reload this one.")
_streams = threading.BoundedSemaphore(MAX_STREAMS)


STARTING = "Starting the camera preview…"
NO_PREVIEW = ("No worker drives the rig, so there is no preview: start the station with "
              "'scanner run'.")


@cache
def placeholder(text: str = STARTING) -> bytes:
    """A plain JPEG (smaller than a real frame) saying why no live frame shows yet."""
    from PIL import Image, ImageDraw  # here: the web app starts without Pillow (issue 15)

    image = Image.new("RGB", (320, 240), (38, 42, 46))
    lines = textwrap.wrap(text, 46)
    top = 120 - 7 * len(lines)
    for number, line in enumerate(lines):
        ImageDraw.Draw(image).text((12, top + 14 * number), line, fill=(220, 224, 228))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


def scan_last_frame() -> bytes | None:
    """While a scan is active: the thumbnail of its newest frame that has one (or a
    placeholder before the first); None when no scan is active."""
    scan = scans.active_scan()
    try:
        if scan is None:
            return None
        storage = current_storage()
        for capture in db.session.scalars(select(Capture).where(Capture.scan_id == scan.id)
                                          .order_by(Capture.id.desc()).limit(3)):
            try:
                return storage.thumbnail_path(capture.session_id, capture.id).read_bytes()
            except OSError:
                continue  # its thumbnail is still being made
        return placeholder(f"Scan {scan.id} has the rig; its frames show here.")
    finally:
        db.session.rollback()


def part(jpeg: bytes) -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
            .encode() + jpeg + b"\r\n")


def frames(max_seconds: float = MAX_STREAM_SECONDS) -> Iterator[bytes]:
    """Multipart parts for as long as the client reads (or max_seconds); Conflict when
    MAX_STREAMS are open already (raised at the first part, before any is sent)."""
    if not _streams.acquire(blocking=False):
        raise Conflict(TOO_MANY, code="too_many_previews")
    try:
        yield from _frames(max_seconds)
    finally:
        _streams.release()


def _frames(max_seconds: float) -> Iterator[bytes]:
    redis = service.watch_preview()
    started = time.monotonic()
    last_seq, last_sent, last_check, scan_frame = -1, 0.0, 0.0, None
    waiting: bytes | None = None
    current = placeholder()
    while time.monotonic() - started < max_seconds:
        now = time.monotonic()
        try:
            if now - last_check >= CHECK_SECONDS:
                last_check = now
                scan_frame, waiting = scan_last_frame(), None
                channel.watch(redis)
                if scan_frame is None and service.ensure_preview(
                        redis, current_settings()) is None:
                    waiting = placeholder(service.busy_reason() or NO_PREVIEW)
            seq, frame = channel.latest_frame(redis)
        except queues.QUEUE_ERRORS as exc:
            log.warning("The preview stream lost Redis: %s", exc)
            return
        fresh = False
        if scan_frame is not None:
            fresh, current, last_seq = scan_frame != current, scan_frame, -1
        elif frame is not None and seq != last_seq:
            fresh, current, last_seq = True, frame, seq
        elif frame is None and waiting is not None:  # nothing will send a frame: say why
            fresh, current = waiting != current, waiting
        if fresh or now - last_sent >= RESEND_SECONDS:
            last_sent = now
            yield part(current)
        else:
            time.sleep(POLL_SECONDS)


def snapshot() -> bytes:
    """One current frame: the live preview's (started for it when need be), or the active
    scan's last frame."""
    scan_frame = scan_last_frame()
    if scan_frame is not None:
        return scan_frame
    redis = service.watch_preview()
    deadline = time.monotonic() + SNAPSHOT_WAIT_SECONDS
    while time.monotonic() < deadline:
        _seq, frame = channel.latest_frame(redis)
        if frame is not None:
            return frame
        if service.preview_job(redis) is None:  # nothing will send one (no worker)
            raise Conflict(service.NO_WORKER.replace("nothing was done", "there is no "
                                                     "preview"), code="no_worker")
        time.sleep(POLL_SECONDS)
    raise ServiceUnavailable(
        f"The camera sent no preview frame within {SNAPSHOT_WAIT_SECONDS:.0f} s. Check that "
        "the worker runs ('scanner run') and look at its log.", code="no_frame")
