"""gunicorn's gthread worker, except that request heads are read by the event loop, not by a
request thread: slow clients cannot take the station down.

Why: gthread hands every connection to a thread as soon as its first byte arrives, and that
thread then blocks until the whole request head is in. Eight clients that each send one header
line every 5 s held all eight threads, and /healthz timed out (issue 10, finding 5).

What this worker changes (everything else is gthread as it is):
- A new or kept-alive connection is watched by the main loop (non-blocking reads, one small
  buffer each) until its head is complete (a blank line) or longer than MAX_HEAD_BYTES; only
  then does it go to a thread, the bytes read so far handed to gunicorn's parser, so parsing,
  limits and error answers are gunicorn's own.
- A head not complete within HEAD_TIMEOUT_SECONDS is dropped (the connection closed), so
  trickling clients cannot hold file descriptors forever either.

Measured alternatives (see tests/runtime/test_slow_clients.py): more gthread threads only move
the limit (each slow client still holds one, and every thread costs a stack); gevent or an
asyncio front proxy would read heads asynchronously too, but add a dependency and, for the
proxy, copy every upload body a second time. This worker adds no process and no dependency;
a connection waiting for its head costs a few hundred bytes.
Request bodies still stream to the app in the request thread (uploads need that), guarded by
web_server.CLIENT_IDLE_SECONDS.
"""

from __future__ import annotations

import selectors
import time
from functools import partial

from gunicorn.workers.gthread import TConn, ThreadWorker

MAX_HEAD_BYTES = 64 * 1024  # past this, gunicorn's parser answers (431/400) from the buffer
HEAD_TIMEOUT_SECONDS = 30.0
_HEAD_END = b"\r\n\r\n"


class HeadFirstThreadWorker(ThreadWorker):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reading_heads: dict[object, float] = {}  # conn -> deadline for its head

    # --- connections come here instead of straight to a thread ---------------------------
    def accept(self, listener) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except BlockingIOError:
            return
        except OSError:
            return  # ECONNABORTED and the like: the client gave up already
        self.nr_conns += 1
        conn = TConn(self.cfg, client_sock, client_addr, listener.getsockname())  # non-blocking
        self._read_head(conn)

    def on_client_socket_readable(self, conn, client) -> None:
        # A kept-alive connection's next request: its head is read here too.
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._read_head(conn)

    def finish_request(self, conn, fs) -> None:
        # gthread hands a connection whose buffer already holds the start of the next request
        # (pipelined, or read ahead with a body) straight to a thread. When that start is not
        # a whole head, it is read here instead, like any other.
        try:
            keepalive = not fs.cancelled() and fs.result() is True
        except Exception:  # noqa: BLE001 - gthread's own finish_request deals with it
            keepalive = False
        if keepalive and self.alive and conn.parser is not None:
            pending = conn.parser.unreader.buf.getvalue()
            if pending and _HEAD_END not in pending:
                conn.parser.unreader.take_buffered()
                conn.sock.setblocking(False)
                self._read_head(conn, pending)
                return
        super().finish_request(conn, fs)

    def _read_head(self, conn, start: bytes = b"") -> None:
        conn.head = bytearray(start)
        self.reading_heads[conn] = time.monotonic() + HEAD_TIMEOUT_SECONDS
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_head_bytes, conn))

    def _on_head_bytes(self, conn, _sock) -> None:
        try:
            chunk = conn.sock.recv(16384)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:  # the client went away before sending a whole head
            self._drop_head(conn)
            return
        conn.head += chunk
        # Search only the new bytes (and the three before them): long heads stay linear.
        start = max(0, len(conn.head) - len(chunk) - len(_HEAD_END) + 1)
        if conn.head.find(_HEAD_END, start) < 0 and len(conn.head) <= MAX_HEAD_BYTES:
            return
        self.poller.unregister(conn.sock)
        del self.reading_heads[conn]
        head, conn.head = bytes(conn.head), None
        conn.data_ready = True  # gthread must not wait for data again
        if conn.initialized:
            conn.parser.unreader.unread(head)  # idle between requests: nobody else reads it
        else:
            conn.pending_head = head  # the thread creates the parser (conn.init) first
        self.enqueue_req(conn)

    def _drop_head(self, conn) -> None:
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        self.reading_heads.pop(conn, None)
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for conn, deadline in list(self.reading_heads.items()):
            if not self.alive or now >= deadline:  # a stopping worker waits for no head
                self._drop_head(conn)

    # --- in the request thread ------------------------------------------------------------
    def handle(self, conn):
        head = getattr(conn, "pending_head", None)
        if head is not None:
            conn.pending_head = None
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(head)
        return super().handle(conn)
