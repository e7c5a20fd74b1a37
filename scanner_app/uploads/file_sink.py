"""Writing one staged upload file as its bytes arrive (uploads/intake.py), hashing it in the
same pass."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import os
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from scanner_app.uploads.socket_body import SpliceUnavailable

if TYPE_CHECKING:
    from scanner_app.uploads.intake import StagedFile
    from scanner_app.uploads.socket_body import SocketBody

QUEUED_CHUNKS = 4  # chunks read but not yet written, per file (memory bound: 4 x 1 MiB)
SMALL_CHUNK = 64 * 1024  # a file's chunks below this are written in the request thread
# fill_from: buffers in turn between reading, hashing and writing. Small enough that all of
# them (1 MiB) stay in the CPU's caches while three threads touch each: measured on 1 GiB
# over loopback, 8 x 128 KiB took 1.85 s of CPU, 4 x 1 MiB 2.2-3.6 s.
FILL_BUFFERS = 8
FILL_BUFFER_BYTES = 128 * 1024
# Every this many bytes written, the disk is asked to start writing them (not waited for), so
# the fsync in `finish` finds little left: receiving and writing to disk overlap instead of
# the whole file waiting in memory for the final fsync. 0 turns it off.
WRITEBACK_BYTES = 8 * 1024 * 1024
# splice_from: the pipe between socket and file (Linux's default maximum, 1 MiB; a smaller
# pipe means more turns: 256 KiB took 1.00-1.03 s a GiB over loopback, 1 MiB 0.87-0.89 s),
# and the piece the hashing thread reads back from the page cache at a time.
PIPE_BYTES = 1024 * 1024
HASH_READ_BYTES = 256 * 1024
_SYNC_FILE_RANGE_WRITE = 2  # linux/fs.h: start writeback of the range, do not wait


def _sync_file_range() -> Callable[[int, int, int], None] | None:
    """Linux's sync_file_range(fd, offset, nbytes, SYNC_FILE_RANGE_WRITE), or None where
    the C library has none (then `finish`'s fsync does all the writing, as before)."""
    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    # A failure only means the final fsync has more to do: the result is not checked.
    return lambda fd, offset, length: call(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


_start_writeback = _sync_file_range()


class FileSink:
    """One staged file written as it arrives. Small files are hashed and written in the
    request thread. From the first large chunk on, the request thread only reads the body:
    one helper thread hashes, another hands the chunks to os.write (hashlib and os.write
    release the GIL, so reading, hashing and writing run on different cores), with no copy
    of the data in between. At most QUEUED_CHUNKS chunks wait per helper, so memory stays
    bounded whatever the file's size. `finish` waits for the helpers, fsyncs and closes; a
    helper's error (a full disk) is raised in the request thread."""

    def __init__(self, staged: StagedFile):
        self.staged = staged
        self.fd: int | None = os.open(staged.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self.hasher = hashlib.sha256()
        self.error: BaseException | None = None
        self._helpers: list[tuple[queue.Queue[bytes | None], threading.Thread]] = []
        self._written = 0  # bytes handed to os.write so far (one writer thread at a time)
        self._writeback_from = 0  # the first byte whose writeback was not started yet

    def write(self, data: bytes) -> None:
        if self.error is not None:
            raise self.error
        if not self._helpers:
            if len(data) < SMALL_CHUNK:  # small files and parts: not worth a thread
                self._hash(data)
                self._write(data)
                self.staged.size += len(data)
                return
            self._helpers = [self._start(self._hash, "upload-hash"),
                             self._start(self._write, "upload-write")]
        data = bytes(data)  # no copy for bytes; immutable while the helpers use it
        for chunks, _ in self._helpers:
            chunks.put(data)
        self.staged.size += len(data)

    def fill_from(self, readinto: Callable[[memoryview], int]) -> None:
        """Write everything `readinto` gives (it fills the start of a buffer and returns how
        much, 0 at the end), with no copy of the data in Python: the request thread fills
        FILL_BUFFERS reused buffers in turn, a helper thread hashes each, another writes it
        and hands the buffer back. An exception from `readinto` stops the helpers and is
        raised; call `finish` (or `abandon`) after, as with `write`."""
        free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(FILL_BUFFERS):
            free.put(bytearray(FILL_BUFFER_BYTES))
        to_hash: queue.Queue[tuple[bytearray, int] | None] = queue.Queue()
        to_write: queue.Queue[tuple[bytearray, int] | None] = queue.Queue()

        def hash_then_pass() -> None:
            while (item := to_hash.get()) is not None:
                if self.error is None:
                    self._guarded(self._hash, memoryview(item[0])[:item[1]])
                to_write.put(item)
            to_write.put(None)

        def write_then_free() -> None:
            while (item := to_write.get()) is not None:
                if self.error is None:
                    self._guarded(self._write, memoryview(item[0])[:item[1]])
                free.put(item[0])  # after an error too: the reader must not wait forever

        helpers = [threading.Thread(target=hash_then_pass, name="upload-hash", daemon=True),
                   threading.Thread(target=write_then_free, name="upload-write", daemon=True)]
        for thread in helpers:
            thread.start()
        try:
            while self.error is None:
                buffer = free.get()
                view, filled = memoryview(buffer), 0
                # Fill the whole buffer: each hand-over costs the helpers a wake-up.
                while filled < FILL_BUFFER_BYTES and (got := readinto(view[filled:])):
                    filled += got
                if filled:
                    to_hash.put((buffer, filled))
                    self.staged.size += filled
                if filled < FILL_BUFFER_BYTES:
                    break
        finally:
            to_hash.put(None)
            for thread in helpers:
                thread.join()
        if self.error is not None:
            raise self.error

    def splice_from(self, body: SocketBody) -> bool:
        """Write the whole `body` with splice: the kernel moves it from the socket through a
        pipe into the file, and a helper thread hashes what has been written, read back from
        the page cache, in step. Python copies nothing, and the kernel once instead of twice.
        Returns False, having written only gunicorn's already-read bytes, where splicing is
        not possible (not Linux, a TLS socket, a refused first splice): then call
        `fill_from(body.readinto)` for the rest. Raises as fill_from does."""
        if not body.can_splice():
            return False
        if pending := body.take_pending():
            self._hash(pending)
            self._write(pending)
            self.staged.size += len(pending)
        read_fd, write_fd = os.pipe()
        progress: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        hashing: threading.Thread | None = None
        try:
            try:
                fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
            except OSError:  # above the system's pipe-max-size: the default pipe works too
                pass
            pipe_bytes = fcntl.fcntl(write_fd, fcntl.F_GETPIPE_SZ)
            while body.remaining:
                if self.error is not None:
                    break
                try:
                    got = body.splice_into(write_fd, pipe_bytes)
                    self._splice_out(read_fd, got, first=hashing is None)
                except SpliceUnavailable:
                    return False
                self.staged.size += got
                if hashing is None:
                    hashing = threading.Thread(target=self._hash_written, name="upload-hash",
                                               args=(progress, self._written - got),
                                               daemon=True)
                    hashing.start()
                progress.put(self._written)
        finally:
            progress.put(None if self.error is None and not body.remaining else -1)
            if hashing is not None:
                hashing.join()
            os.close(read_fd)
            os.close(write_fd)
        if self.error is not None:
            raise self.error
        return True

    def _splice_out(self, read_fd: int, count: int, first: bool) -> None:
        """Move `count` bytes from the pipe into the file (all of them: the pipe is left
        empty for the next splice from the socket)."""
        left = count
        while left:
            try:
                left -= os.splice(read_fd, self.fd, left)
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.ENOSYS) or not first or left < count:
                    raise
                # This file system takes no splice: copy the pipe's bytes, then readinto.
                while left:
                    data = os.read(read_fd, left)
                    self._hash(data)
                    self._write(data)
                    self.staged.size += len(data)
                    left -= len(data)
                raise SpliceUnavailable() from exc
        self._wrote(count)

    def _hash_written(self, progress: queue.SimpleQueue[int | None], start: int) -> None:
        """Hash the file from `start` up to each offset put into `progress`, read back through
        its own descriptor into one reused buffer; None: done, -1: stop now."""
        buffer = memoryview(bytearray(HASH_READ_BYTES))
        done = start
        try:
            fd = os.open(self.staged.path, os.O_RDONLY)
            try:
                while (end := progress.get()) is not None and end >= 0:
                    while done < end:
                        got = os.preadv(fd, [buffer[:min(HASH_READ_BYTES, end - done)]], done)
                        if got == 0:
                            raise OSError(errno.EIO, "the staged file is shorter than written")
                        self._hash(buffer[:got])
                        done += got
            finally:
                os.close(fd)
        except BaseException as exc:  # noqa: BLE001 - raised in the request thread
            self.error = exc

    def _guarded(self, consume: Callable[[memoryview], None], data: memoryview) -> None:
        try:
            consume(data)
        except BaseException as exc:  # noqa: BLE001 - raised in the request thread
            self.error = exc

    def _hash(self, data: bytes) -> None:
        self.hasher.update(data)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]
        self._wrote(len(data))

    def _wrote(self, count: int) -> None:
        self._written += count
        if (_start_writeback is not None and WRITEBACK_BYTES
                and self._written - self._writeback_from >= WRITEBACK_BYTES):
            _start_writeback(self.fd, self._writeback_from, self._written - self._writeback_from)
            self._writeback_from = self._written

    def _start(self, consume, name: str) -> tuple[queue.Queue[bytes | None], threading.Thread]:
        chunks: queue.Queue[bytes | None] = queue.Queue(QUEUED_CHUNKS)

        def run() -> None:
            while (data := chunks.get()) is not None:
                if self.error is None:
                    try:
                        consume(data)
                    except BaseException as exc:  # noqa: BLE001 - raised in the request thread
                        self.error = exc

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        return chunks, thread

    def _stop(self) -> None:
        for chunks, _ in self._helpers:
            chunks.put(None)
        for _, thread in self._helpers:
            thread.join()
        self._helpers = []

    def finish(self) -> None:
        self._stop()
        if self.error is not None:
            raise self.error
        os.fsync(self.fd)  # the bytes are on disk before any row names them
        os.close(self.fd)
        self.fd = None
        self.staged.sha256 = self.hasher.hexdigest()

    def abandon(self) -> None:
        self._stop()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
