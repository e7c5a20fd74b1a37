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
"""

from __future__ import annotations

import re

from scanner_app.uploads.socket_body import SocketBody

READ_BYTES = 256 * 1024  # socket reads for the decoder's pieces
FAST_PART_MIN_BYTES = 1024 * 1024  # a part whose data may be this long takes the fast path
_BLANK_LINE = b"\r\n\r\n"
_ANY_BLANK_LINE = re.compile(b"\r\n\r\n|\r\r|\n\n")  # what the decoder takes for one


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

    def piece(self) -> bytes:
        """The next bytes for the decoder (b"" at the end of the body)."""
        if not self.pending and not self._read_more():
            return b""
        cut = self.pending.find(_BLANK_LINE)
        end = cut + len(_BLANK_LINE) if cut >= 0 else len(self.pending)
        out = bytes(self.pending[:end])
        del self.pending[:end]
        first = _ANY_BLANK_LINE.search(out)
        self.headers_just_ended = (
            cut >= 0 and first is not None and first.start() == cut
            and not (self._last_byte in (b"\r", b"\n") and out[:1] in (b"\r", b"\n")))
        self._last_byte = out[-1:]
        return out

    def read(self, _size: int) -> bytes:  # the stream the decoder loop reads
        return self.piece()

    def part_is_large(self) -> bool:
        """Whether the part just started may be large: its end is not among the bytes read."""
        return (self.delimiter not in self.pending
                and len(self.pending) + self.body.remaining >= FAST_PART_MIN_BYTES)

    def start_part(self) -> None:
        self._part_done = False

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
