"""A multipart body read from gunicorn's socket (uploads/socket_body.py), with the data of a
large file part going straight from the socket into the FileSink's buffers.

Why: werkzeug's multipart decoder copies every byte three times and allocates a new bytes
object per piece; for a 1 GiB file part that made the request thread, not the disk, the limit
(issue 15). The decoder still parses everything else (boundaries, part headers, fields, small
files); only the data of a large part skips it.

How the two share the stream without touching the decoder's insides:
- the decoder gets pieces cut right after each blank line (b"\\r\\n\\r\\n"), so when it
  announces a file part, it holds nothing of that part's data (checked: the only event after
  the File is an empty Data, and the headers ended at that very blank line);
- the part's data are then read into the sink's buffers up to the delimiter
  (CRLF "--" boundary), a possible start of the delimiter at a buffer's end kept back;
- the delimiter and what follows go back to the decoder, which ends the part and goes on.
A client that ends lines with bare LF never takes the fast path (its header block has no
CRLF CRLF), so it gets the decoder's own, more lenient parsing.

On Linux the large part is spliced (splice_part), as the raw PUT body is: socket -> pipe ->
file in the request thread, no copy through Python; a helper thread reads the file back from
the page cache, finds the delimiter and hashes the data before it. The request thread splices
at most LOOKAHEAD_BYTES past what the helper has searched; once the delimiter is found, the
bytes spliced past it are read back into `pending` for the decoder and the file is cut at the
delimiter. Why: reading the part into Python buffers took a copy into them, a write out of
them and three threads handing each 128 KiB on; spliced, the request thread does no Python
work per byte and one helper searches and hashes each cached piece in one pass: about 0.5 CPU
s a GiB less in make bench (docs/performance.md).
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import threading
from typing import TYPE_CHECKING

from scanner_app.uploads.socket_body import SocketBody, SpliceUnavailable

if TYPE_CHECKING:
    from scanner_app.uploads.file_sink import FileSink

READ_BYTES = 256 * 1024  # socket reads for the decoder's pieces
FAST_PART_MIN_BYTES = 1024 * 1024  # a part whose data may be this long takes the fast path
_BLANK_LINE = b"\r\n\r\n"
_ANY_BLANK_LINE = re.compile(b"\r\n\r\n|\r\r|\n\n")  # what the decoder takes for one
# splice_part: how far the splicing may run ahead of the delimiter search (what it spliced
# past the delimiter is read back, so this bounds that too), the pipe, and the search
# thread's reads from the page cache. The pipe is smaller than the raw body's: the bytes
# moved in one turn are still in the CPU's caches when copied into the file and read back.
# 1 GiB over loopback, 4 runs each: a sendfile client 1.75-1.94 CPU s with 128 KiB against
# 1.77-2.04 with 1 MiB; a client writing from its own memory 1.35-1.87 against 2.09-2.41.
LOOKAHEAD_BYTES = 4 * 1024 * 1024
PIPE_BYTES = 128 * 1024
SCAN_READ_BYTES = 256 * 1024


class SocketMultipart:
    def __init__(self, body: SocketBody, boundary: bytes) -> None:
        self.body = body
        self.delimiter = b"\r\n--" + boundary
        self.pending = bytearray()  # read from the socket, not yet handed on
        self._read = memoryview(bytearray(max(1, min(READ_BYTES, body.remaining))))
        self._last_byte = b""
        self.headers_just_ended = False  # the last piece ended exactly at a header block's end
        self._part_done = False

    def _read_more(self) -> int:
        got = self.body.readinto(self._read)
        self.pending += self._read[:got]
        return got

    def piece(self, limit: int = READ_BYTES) -> bytes:
        """The next bytes for the decoder, at most `limit` (b"" at the end of the body).
        `pending` may hold megabytes read back after a spliced part: the decoder refuses
        pieces above its max_form_memory_size."""
        if not self.pending and not self._read_more():
            return b""
        cut = self.pending.find(_BLANK_LINE, 0, limit)
        end = cut + len(_BLANK_LINE) if cut >= 0 else min(len(self.pending), limit)
        out = bytes(self.pending[:end])
        del self.pending[:end]
        first = _ANY_BLANK_LINE.search(out)
        self.headers_just_ended = (
            cut >= 0 and first is not None and first.start() == cut
            and not (self._last_byte in (b"\r", b"\n") and out[:1] in (b"\r", b"\n")))
        self._last_byte = out[-1:]
        return out

    def read(self, size: int) -> bytes:  # the stream the decoder loop reads
        return self.piece(size)

    def part_is_large(self) -> bool:
        """Whether the part just started may be large: its end is not among the bytes read."""
        return (self.delimiter not in self.pending
                and len(self.pending) + self.body.remaining >= FAST_PART_MIN_BYTES)

    def start_part(self) -> None:
        self._part_done = False
        # The decoder holds nothing now (the part's data skip it), so the next piece cannot
        # make a blank line with the last byte it was given: a large file part right after
        # this one (its delimiter starts with CR, that byte was LF) may take the fast path.
        self._last_byte = b""

    def part_data(self, view: memoryview) -> int:
        """FileSink.fill_from's reader: the current part's data up to its delimiter, 0 once
        the delimiter (left in `pending` for the decoder) or the body's end is reached.
        `view` is the unfilled end of a bytearray (fill_from's buffer, view.obj)."""
        if self._part_done:
            return 0
        buffer, size = view.obj, len(view)
        base = len(buffer) - size
        while True:
            placed = min(size, len(self.pending))
            view[:placed] = self.pending[:placed]
            del self.pending[:placed]
            if placed < size:
                placed += self.body.readinto(view[placed:])
            end = base + placed
            at = buffer.find(self.delimiter, base, end)
            if at >= 0:
                self.pending[:0] = buffer[at:end]
                self._part_done = True
                return at - base
            keep = self._possible_delimiter_start(buffer, base, end)
            self.pending[:0] = buffer[keep:end]
            if keep > base:
                return keep - base
            # All of it may be the delimiter's start: decide with more bytes in `pending`.
            if self.pending.startswith(self.delimiter):
                self._part_done = True
                return 0
            if len(self.pending) >= len(self.delimiter):
                view[0] = self.pending[0]  # not the delimiter: its first byte is data
                del self.pending[0]
                return 1
            if not self._read_more():  # the body ended inside the part: the decoder says so
                self._part_done = True
                return 0

    def _possible_delimiter_start(self, buffer: bytearray, base: int, end: int) -> int:
        """Where a start of the delimiter may begin in buffer[base:end]'s last bytes (end
        when nowhere)."""
        at = buffer.find(b"\r", max(base, end - len(self.delimiter) + 1), end)
        while at >= 0 and not self.delimiter.startswith(buffer[at:end]):
            at = buffer.find(b"\r", at + 1, end)
        return at if at >= 0 else end

    def splice_part(self, sink: FileSink) -> bool:
        """Write the current part's data into the empty `sink` with splice, up to its
        delimiter, as part_data would give them; the delimiter and what follows are left in
        `pending` for the decoder. Returns False, with nothing taken (every byte still in
        `pending` or the socket), where splicing is not possible (not Linux, TLS, a refused
        first splice): then use sink.fill_from(part_data). Raises ClientDisconnected, or the
        disk's OSError, as fill_from does; call the sink's finish or abandon after."""
        body = self.body
        if not body.can_splice() or sink.staged.size or sink.fd is None:
            return False
        self.pending += body.take_pending()  # gunicorn's bytes come after ours
        read_fd, write_fd = os.pipe()
        scan: _PartScan | None = None
        try:
            try:
                fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
            except OSError:  # above the system's pipe-max-size: the default pipe works too
                pass
            pipe_bytes = fcntl.fcntl(write_fd, fcntl.F_GETPIPE_SZ)
            try:
                got = body.splice_into(write_fd, pipe_bytes)
            except SpliceUnavailable:
                return False
            # Written at explicit offsets: the file's position moves only at the end.
            head = len(self.pending)
            if not self._first_splice_out(read_fd, sink, got, head):
                return False
            _pwrite_all(sink.fd, self.pending, 0)
            self.pending = bytearray()
            written = head + got
            sink._wrote(written)
            scan = _PartScan(sink, self.delimiter)
            scan.reached(written)
            while body.remaining and scan.wait_until_within(written, LOOKAHEAD_BYTES):
                got = body.splice_into(write_fd, pipe_bytes)
                _splice_out(read_fd, sink.fd, got, written)
                written += got
                sink._wrote(got)
                scan.reached(written)
            scan.reached(None)  # nothing more comes: search to the end
            scan.join()
        finally:
            if scan is not None:
                scan.stop()
            os.close(read_fd)
            os.close(write_fd)
        if scan.error is not None:
            raise scan.error
        self._end_spliced_part(sink, scan.data_end, written)
        return True

    def _first_splice_out(self, read_fd: int, sink: FileSink, got: int, at: int) -> bool:
        """Splice the first `got` bytes from the pipe into the file after the `at` bytes of
        `pending`; False (the pipe's bytes appended to `pending`, the file untouched) when
        this file system takes no splice."""
        left = got
        try:
            while left:
                left -= os.splice(read_fd, sink.fd, left, offset_dst=at + got - left)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOSYS) or left < got:
                raise
        while left:  # refused before any byte moved: the pipe holds all of them
            data = os.read(read_fd, left)
            self.pending += data
            left -= len(data)
        return False

    def _end_spliced_part(self, sink: FileSink, data_end: int, written: int) -> None:
        """The part's data are the file's first `data_end` bytes: what was spliced past them
        goes back to `pending`, the file is cut there and its position set there (a later
        write, should the decoder still find data of this part, follows them)."""
        fd = os.open(sink.staged.path, os.O_RDONLY)
        try:
            rest = bytearray()
            while len(rest) < written - data_end:
                more = os.pread(fd, written - data_end - len(rest), data_end + len(rest))
                if not more:
                    raise OSError(errno.EIO, "the staged file is shorter than written")
                rest += more
        finally:
            os.close(fd)
        self.pending = rest
        os.ftruncate(sink.fd, data_end)
        os.lseek(sink.fd, data_end, os.SEEK_SET)
        sink._written = data_end
        sink._writeback_from = min(sink._writeback_from, data_end)
        sink.staged.size = data_end
        self._part_done = True


def _pwrite_all(fd: int, data: bytes | bytearray, offset: int) -> None:
    view = memoryview(data)
    while view:
        done = os.pwrite(fd, view, offset)
        view, offset = view[done:], offset + done


def _splice_out(read_fd: int, fd: int, count: int, offset: int) -> None:
    """Move `count` bytes from the pipe into the file at `offset` (all of them: the pipe is
    left empty for the next splice from the socket)."""
    while count:
        done = os.splice(read_fd, fd, count, offset_dst=offset)
        count, offset = count - done, offset + done


class _PartScan:
    """The helper thread of splice_part: reads the staged file back from the page cache as
    it is spliced, finds the first delimiter and hashes the data before it into the sink's
    hasher. `data_end` is where the data end: the delimiter's offset, or, when the body ended
    without one, the last offset that cannot begin it (the decoder then says the body was cut
    short). Only the data are hashed, in order, once."""

    def __init__(self, sink: FileSink, delimiter: bytes) -> None:
        self.sink = sink
        self.delimiter = delimiter
        self.data_end = 0  # searched and hashed up to here
        self.found = False
        self.error: BaseException | None = None
        self._end = 0  # bytes in the file so far
        self._final = False  # `_end` grows no more
        self._stopped = False
        self._done = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="upload-hash", daemon=True)
        self._thread.start()

    def reached(self, end: int | None) -> None:
        """The file now holds `end` bytes; None: it holds all it will."""
        with self._changed:
            if end is None:
                self._final = True
            else:
                self._end = end
            self._changed.notify_all()

    def wait_until_within(self, written: int, lookahead: int) -> bool:
        """Wait until the search is at most `lookahead` bytes behind `written`; False when
        no more should be spliced (the delimiter found, or the helper failed)."""
        with self._changed:
            self._changed.wait_for(lambda: self._done or written - self.data_end <= lookahead)
            return not self._done

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
        self._thread.join()

    def join(self) -> None:
        self._thread.join()

    def _wait_for(self, need: int) -> bool:
        """Wait until `need` bytes past data_end are in the file, or no more come; False
        when stopped."""
        with self._changed:
            self._changed.wait_for(lambda: self._stopped or self._final
                                   or self._end - self.data_end >= need)
            return not self._stopped

    def _run(self) -> None:
        size = len(self.delimiter)
        buffer = bytearray(max(SCAN_READ_BYTES, 2 * size))  # a read holds a delimiter
        view = memoryview(buffer)
        try:
            fd = os.open(self.sink.staged.path, os.O_RDONLY)
            try:
                self._scan(fd, buffer, view, size)
            finally:
                os.close(fd)
        except BaseException as exc:  # noqa: BLE001 - raised in the request thread
            self.error = exc
        finally:
            with self._changed:
                self._done = True
                self._changed.notify_all()

    def _scan(self, fd: int, buffer: bytearray, view: memoryview, size: int) -> None:
        while self._wait_for(size):
            with self._changed:
                available = self._end - self.data_end
            if available < size:  # all is in, and fewer bytes than a delimiter are left
                return
            got = os.preadv(fd, [view[:min(len(buffer), available)]], self.data_end)
            if got < size:
                raise OSError(errno.EIO, "the staged file is shorter than written")
            at = buffer.find(self.delimiter, 0, got)
            # Without the delimiter, its first bytes may be the last ones read: they are
            # searched again with the next read.
            data = at if at >= 0 else got - size + 1
            self.sink.hasher.update(view[:data])
            with self._changed:
                self.data_end += data
                self.found = at >= 0
                self._changed.notify_all()
            if self.found:
                return
