"""The output of `scanner run`: its own lines and its parts' lines, prefixed with the part's name,
written by one thread that never makes anybody wait.

Why a queue and a writer thread: the parts write into pipes that `scanner run` must keep
draining, whatever happens to its own stdout. If stdout is a file on a full disk (ENOSPC), a
closed pipe, or a terminal that stopped reading, a writer that blocked or died would let the
pipes fill, and then every part would freeze on its next print, forever. So readers only ever
put lines on a bounded queue; when it is full, or a write fails, the line is dropped and
counted, and once writing works again one line says how many were lost.
"""

from __future__ import annotations

import queue
import threading
from typing import TextIO

MAX_QUEUED_LINES = 10_000


class LineSink:
    """Thread-safe, never-blocking `say(text, prefix)` onto `out`."""

    def __init__(self, out: TextIO, max_queued: int = MAX_QUEUED_LINES) -> None:
        self.out = out
        self._lines: queue.Queue[str | None] = queue.Queue(max_queued)
        self._dropped = 0  # lines lost since the last report
        self.dropped_total = 0
        self._last_error = ""
        self._count_lock = threading.Lock()
        self._writer = threading.Thread(target=self._write_loop, name="output-writer",
                                        daemon=True)
        self._writer.start()

    def say(self, text: str, prefix: str = "run") -> None:
        try:
            self._lines.put_nowait(f"{prefix:>7} | {text}\n")
        except queue.Full:
            self._drop("the output could not keep up")

    def _drop(self, why: str) -> None:
        with self._count_lock:
            self._dropped += 1
            self.dropped_total += 1
            self._last_error = why

    def _write(self, line: str) -> str | None:
        """Write one line; None, or why it could not be written."""
        try:
            self.out.write(line)
            self.out.flush()
            return None
        except (OSError, ValueError) as exc:  # ValueError: written to a closed file
            return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__

    def _write_loop(self) -> None:
        while True:
            line = self._lines.get()
            if line is None:
                return
            with self._count_lock:
                dropped, why = self._dropped, self._last_error
            if dropped and self._write(f"{'run':>7} | {dropped} lines of output were lost "
                                       f"({why}).\n") is None:
                with self._count_lock:
                    self._dropped -= dropped
            failed = self._write(line)
            if failed is not None:
                self._drop(failed)

    def close(self, timeout: float = 2.0) -> None:
        """Write what is queued (for up to `timeout`), then stop the writer."""
        try:
            self._lines.put(None, timeout=timeout)
        except queue.Full:
            return
        self._writer.join(timeout)
