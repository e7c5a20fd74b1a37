"""A request body of known length read straight from gunicorn's client socket.

Why: gunicorn's body reader hands out a new bytes object per read and copies each one through
two BytesIO buffers (its Unreader and Body); for a 1 GiB upload those copies cost more CPU than
hashing and writing the file (issue 15). Here the body goes from the socket into the caller's
own (reused) buffer with recv_into: one copy, done by the kernel.

gunicorn's state is kept exact, so the connection stays usable for the next request:
- bytes gunicorn already read past the head (its Body buffer, then its Unreader) are handed
  out first; bytes past the body's end are put back for the next request;
- every byte taken counts against gunicorn's own LengthReader, never more than it has left,
  so nothing past the body is read from the socket, and gunicorn finds the body fully read;
- a read that fails (client gone, or silent past the client idle timeout that
  runtime/web_server.py puts on the socket) marks gunicorn's body as failed, so the connection
  is closed rather than reused.

Only a plain Content-Length body under gunicorn qualifies; anything else (chunked, Werkzeug's
server, the test client) gets None and is read through the WSGI stream as before.

On Linux the body can also be spliced (splice_into): the kernel moves it from the socket into
a pipe and from there into the file (FileSink.splice_from), with no copy through Python and
one copy less in the kernel (issue 15), under the same exact count and idle timeout.
"""

from __future__ import annotations

import errno
import io
import os
import select
import socket

from werkzeug.exceptions import ClientDisconnected

# A first splice failing with one of these means this socket or kernel cannot splice: nothing
# was taken, and the body is read with recv_into instead.
_CANNOT_SPLICE = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP}


class SpliceUnavailable(Exception):
    """This body cannot be spliced (nothing of it was taken): read it with readinto."""


class SocketBody:
    def __init__(self, sock, body, reader) -> None:
        self.sock = sock
        self._body = body
        self._reader = reader  # gunicorn's LengthReader: reader.length = bytes not yet taken
        # What gunicorn's Body holds was already taken from the reader's count.
        held = body.buf.getvalue()
        body.buf = io.BytesIO()
        buffered = reader.unreader.take_buffered()
        take = min(len(buffered), reader.length)
        if take < len(buffered):  # the start of the next request: gunicorn's again
            reader.unreader.unread(buffered[take:])
        reader.length -= take
        self._pending = memoryview(held + buffered[:take])
        self.remaining = len(self._pending) + reader.length
        self._spliced = 0
        self._poll = None  # select.poll(), made on the first wait and kept for the next

    def can_splice(self) -> bool:
        """Whether splice_into may work here: Linux, and a plain TCP or Unix socket (a TLS
        socket's bytes on the wire are not the body)."""
        return (hasattr(os, "splice") and type(self.sock) is socket.socket
                and self.sock.family in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX))

    def take_pending(self) -> memoryview:
        """The body's bytes gunicorn had already read (to be used before splice_into)."""
        pending, self._pending = self._pending, memoryview(b"")
        self.remaining -= len(pending)
        return pending

    def splice_into(self, pipe_w: int, limit: int) -> int:
        """Move up to `limit` next bytes of the body from the socket into the pipe `pipe_w`
        (call take_pending first); 0 once all of it was read. Raises ClientDisconnected as
        readinto does, SpliceUnavailable when the first splice is refused."""
        want = min(limit, self.remaining)
        if want == 0:
            return 0
        try:
            got = self._splice(pipe_w, want)
        except SpliceUnavailable:
            raise
        except OSError:  # reset, or the idle timeout (TimeoutError)
            got = 0
        if got == 0:
            self._body.failed = True  # where the next request starts is unknown
            raise ClientDisconnected()
        self._spliced += got
        self._reader.length -= got
        self.remaining -= got
        return got

    def _splice(self, pipe_w: int, want: int) -> int:
        fd, timeout = self.sock.fileno(), self.sock.gettimeout()
        while True:
            try:
                return os.splice(fd, pipe_w, want)
            except BlockingIOError:
                # A socket with a timeout is non-blocking underneath: wait for data here, with
                # the same timeout recv_into would have used.
                if self._poll is None:
                    self._poll = select.poll()
                    self._poll.register(fd, select.POLLIN)
                if not self._poll.poll(None if timeout is None else timeout * 1000):
                    raise TimeoutError() from None
            except OSError as exc:
                if exc.errno in _CANNOT_SPLICE and not self._spliced:
                    raise SpliceUnavailable() from exc
                raise

    def readinto(self, view: memoryview) -> int:
        """Fill the start of `view` with the next bytes of the body; 0 once it has all been
        read. Raises ClientDisconnected when the client closes or stalls before the end."""
        want = min(len(view), self.remaining)
        if want == 0:
            return 0
        if self._pending:
            got = min(want, len(self._pending))
            view[:got] = self._pending[:got]
            self._pending = self._pending[got:]
        else:
            try:
                got = self.sock.recv_into(view, want)
            except OSError:  # reset, or the idle timeout (TimeoutError)
                got = 0
            if got == 0:
                self._body.failed = True  # where the next request starts is unknown
                raise ClientDisconnected()
            self._reader.length -= got
        self.remaining -= got
        return got


def socket_body(environ: dict) -> SocketBody | None:
    """The body of this request as a SocketBody, or None when it must be read through
    wsgi.input (not gunicorn, no Content-Length, chunked, or nothing left to read)."""
    sock = environ.get("gunicorn.socket")
    body = environ.get("wsgi.input")
    if sock is None or body is None:
        return None
    from gunicorn.http.body import Body, LengthReader  # only ever under gunicorn

    if type(body) is not Body or type(body.reader) is not LengthReader:
        return None
    if getattr(body, "failed", False) or not hasattr(body.reader.unreader, "take_buffered"):
        return None
    return SocketBody(sock, body, body.reader)
