"""The capture pipeline of a scan: while the rig turns to frame n+1, settles and exposes it,
frame n is recorded (mask, metadata line, Capture row, session counters, progress, thumbnail)
by one recorder thread behind a bounded queue, in the order the frames were taken.

The recorder starts on a frame once the platter stands at the next pose (`rig_still()`), so its
disk syncs and CPU fall into the settle and exposure time and not into the move, whose position
saves are the rig thread's own syncs (sharing the disk's flushes made every move about 2 ms
slower). When frames pile up (a recorder slower than the rig) it does not wait.

Crash-safe: a frame counts (frames_captured, the resume point) only once its commit is done.
The job's thread submits each frame right after the camera wrote its file; `close()` lets the
recorder finish every frame queued (pause, cancel, stop and failures drain it), unless the
recorder itself failed: then the frames after the failing one are dropped, their files are
left in `pending` for the job to remove, and a resume takes them again. A killed process
loses at most the queued frames, which a resume takes again the same way.

The recorder has its own app context, so its own database session (sessions are not
thread-safe), and holds session.json writes until it ends, like the job does.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask

from hal import CaptureInfo
from scanner_app.platform.extensions import db
from scanner_app.sessions import record as session_records

log = logging.getLogger("scanner.scan_job")

# Frames waiting to be recorded before the job's thread waits for the recorder: enough to ride
# out one slow record (a database hiccup), small enough that a kill loses little.
DEPTH = 2


@dataclass
class TakenFrame:
    """A frame the camera has written, not yet recorded."""

    index: int
    angle: float
    taken_at: datetime
    path: Path
    info: CaptureInfo
    fields: dict[str, Any]  # ring, scan_pass, elevation_deg, pose
    plate: tuple[Path, float] | None = None


_STOP = object()
# The recorder's niceness: the thread driving the rig keeps the CPU when both want it (on a
# Pi Zero a mask costs more than a frame's move), so frame timing stays the rig's.
RECORDER_NICE = 10
SWITCH_INTERVAL = 0.001  # seconds; see CapturePipeline.submit
# The longest the recorder waits for the rig to stand still: a rig thread that never says so
# (a long tilt, a stuck move) delays recording, never stops it.
STILL_WAIT_SECONDS = 2.0


def _lower_priority() -> None:
    """Lower this thread's priority (Linux: niceness is per thread, keyed by its id)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid),
                                                 RECORDER_NICE))
    except OSError as exc:
        log.info("The scan's recorder keeps its priority: %s", exc)


class CapturePipeline:
    """One recorder thread calling `record(frame)` for each submitted frame, in order."""

    def __init__(self, app: Flask, record: Callable[[TakenFrame], None], name: str,
                 depth: int = DEPTH):
        self._app = app
        self._record = record
        self._name = name
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._switch_interval = sys.getswitchinterval()
        self._rig_still = threading.Event()
        self._rig_still.set()
        self.pending: dict[int, Path] = {}  # submitted, not recorded: index -> file
        self.failed_at: int | None = None  # the frame the recorder failed to record
        self.submitted = 0
        self.recorded = 0

    # --- the job's side ----------------------------------------------------------------
    def submit(self, frame: TakenFrame) -> None:
        """Queue a written frame; waits while the recorder is `depth` frames behind. Raises
        the recorder's error instead, if it failed."""
        self.check()
        if self._thread is None:
            # The rig's thread wakes from a sleep several times per frame (move slices,
            # settle, exposure); each wake-up waits for the GIL while the recorder runs
            # Python, by default up to 5 ms. Shorter turns while the recorder lives.
            self._switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(self._switch_interval, SWITCH_INTERVAL))
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
        with self._lock:
            self.pending[frame.index] = frame.path
            self.submitted += 1
        self._rig_still.clear()  # the rig moves on now; recorded once it stands again
        self._queue.put(frame)

    def rig_still(self) -> None:
        """The platter stands at its next pose: the recorder may write now."""
        self._rig_still.set()

    def check(self) -> None:
        """Raise the error the recorder failed with, if it did."""
        if self._error is not None:
            raise self._error

    def drain(self) -> None:
        """Wait until every submitted frame is recorded (or dropped after a failure); then
        raise the recorder's error, if any."""
        if self._thread is not None:
            self._rig_still.set()
            self._queue.join()
        self.check()

    def close(self) -> BaseException | None:
        """Let the recorder finish what is queued and end it. Never raises: returns the
        recorder's error, if it failed (the files of the frames it did not record stay in
        `pending`)."""
        if self._thread is not None:
            self._rig_still.set()
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
            sys.setswitchinterval(self._switch_interval)
        return self._error

    @property
    def failed(self) -> bool:
        return self._error is not None

    # --- the recorder thread -----------------------------------------------------------
    def _run(self) -> None:
        _lower_priority()
        with self._app.app_context():
            try:
                with session_records.batched():  # session.json once, when the recorder ends
                    self._loop()
            except Exception:  # noqa: BLE001 - writing session.json never fails the scan
                log.exception("The scan's recorder could not write the session record")
            finally:
                db.session.remove()

    def _loop(self) -> None:
        while True:
            frame = self._queue.get()
            try:
                if frame is _STOP:
                    return
                if self._error is None:
                    if self._queue.empty():  # not behind: wait for the rig to stand
                        self._rig_still.wait(STILL_WAIT_SECONDS)
                    self._record_one(frame)
            finally:
                self._queue.task_done()

    def _record_one(self, frame: TakenFrame) -> None:
        try:
            self._record(frame)
        except BaseException as exc:  # noqa: BLE001 - handed to the job's thread
            with contextlib.suppress(Exception):
                db.session.rollback()
            self.failed_at = frame.index
            self._error = exc
            log.warning("The scan's recorder stopped at frame %s: %s", frame.index + 1,
                        exc.__class__.__name__)
            return
        with self._lock:
            self.pending.pop(frame.index, None)
            self.recorded += 1
