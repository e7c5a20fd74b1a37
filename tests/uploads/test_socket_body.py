"""The raw PUT body read straight from gunicorn's socket (uploads/socket_body.py) and written
through FileSink.fill_from: gunicorn's own parser on a real socket pair, and the sink on real
files (and /dev/full for a full disk)."""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import threading
from collections.abc import Iterator

import pytest
from gunicorn.config import Config
from gunicorn.http.parser import RequestParser
from werkzeug.exceptions import ClientDisconnected
from werkzeug.test import EnvironBuilder

from scanner_app.uploads import file_sink
from scanner_app.uploads.file_sink import FileSink
from scanner_app.uploads.intake import StagedFile
from scanner_app.uploads.socket_body import socket_body
from tests.conftest import IN_CI

NEXT_REQUEST = b"GET /next HTTP/1.1\r\nHost: station\r\n\r\n"


def body_of(size: int) -> bytes:
    return os.urandom(size)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair()
    server.settimeout(10)
    yield server, client
    server.close()
    client.close()


def send_later(sock: socket.socket, data: bytes, close: bool = False) -> threading.Thread:
    def send() -> None:
        sock.sendall(data)
        if close:
            sock.shutdown(socket.SHUT_WR)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def parsed(server: socket.socket) -> tuple[RequestParser, object]:
    parser = RequestParser(Config(), server, ("127.0.0.1", 1))
    return parser, next(parser)


def environ_of(server: socket.socket, request) -> dict:
    return {"gunicorn.socket": server, "wsgi.input": request.body}


def read_all(body, buffer_size: int) -> bytes:
    buffer, out = bytearray(buffer_size), bytearray()
    while got := body.readinto(memoryview(buffer)):
        out += buffer[:got]
    return bytes(out)


@pytest.mark.parametrize("size", [3 * 1024 * 1024 + 17, 100])
def test_body_larger_than_the_buffer_is_exact_and_the_next_request_follows(pair, size):
    """3 MiB: read mostly from the socket. 100 bytes: gunicorn's first read holds the head,
    the whole body and the next request, whose bytes must be given back to gunicorn."""
    server, client = pair
    body = body_of(size)
    head = b"PUT /up HTTP/1.1\r\nHost: station\r\nContent-Length: %d\r\n\r\n" % len(body)
    # The head with the body's start in one piece (gunicorn reads some body with the head),
    # the next request right behind the body (it must stay gunicorn's).
    sender = send_later(client, head + body + NEXT_REQUEST)
    parser, request = parsed(server)
    direct = socket_body(environ_of(server, request))
    assert direct is not None
    assert read_all(direct, 256 * 1024) == body
    assert direct.readinto(memoryview(bytearray(10))) == 0
    sender.join(10)
    assert parser.finish_body() is True  # nothing left of the body for gunicorn to drain
    following = next(parser)
    assert (following.method, following.path) == ("GET", "/next")


def test_a_body_cut_short_raises_and_the_connection_is_not_reused(pair):
    server, client = pair
    head = b"PUT /up HTTP/1.1\r\nHost: station\r\nContent-Length: 1000000\r\n\r\n"
    sender = send_later(client, head + body_of(400_000), close=True)
    parser, request = parsed(server)
    direct = socket_body(environ_of(server, request))
    with pytest.raises(ClientDisconnected):
        read_all(direct, 64 * 1024)
    sender.join(10)
    assert not sender.is_alive()
    assert parser.finish_body() is False  # gunicorn closes instead of parsing garbage


def test_a_stalled_client_raises_at_the_socket_timeout(pair):
    server, client = pair
    head = b"PUT /up HTTP/1.1\r\nHost: station\r\nContent-Length: 1000\r\n\r\n"
    client.sendall(head + b"x" * 10)
    parser, request = parsed(server)
    server.settimeout(0.2)  # what runtime/web_server.py's client idle timeout does
    direct = socket_body(environ_of(server, request))
    with pytest.raises(ClientDisconnected):
        read_all(direct, 1024)


def test_chunked_bodies_and_other_servers_use_the_wsgi_stream(pair):
    server, client = pair
    client.sendall(b"PUT /up HTTP/1.1\r\nHost: station\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"3\r\nabc\r\n0\r\n\r\n")
    _, request = parsed(server)
    assert socket_body(environ_of(server, request)) is None
    assert socket_body(EnvironBuilder(method="PUT", data=b"abc").get_environ()) is None


def staged_file(tmp_path) -> StagedFile:
    return StagedFile(filename="big.bin", path=tmp_path / "00000")


class Pieces:
    """A readinto that gives `data` in uneven pieces, as a socket does."""

    def __init__(self, data: bytes, sizes: tuple[int, ...] = (1, 4096, 70_001, 1 << 20)):
        self.data, self.sizes, self.at, self.turn = memoryview(data), sizes, 0, 0

    def readinto(self, view: memoryview) -> int:
        size = min(len(view), self.sizes[self.turn % len(self.sizes)], len(self.data) - self.at)
        view[:size] = self.data[self.at:self.at + size]
        self.at += size
        self.turn += 1
        return size


def test_fill_from_writes_and_hashes_every_byte_through_reused_buffers(tmp_path):
    data = body_of(file_sink.FILL_BUFFERS * file_sink.FILL_BUFFER_BYTES * 2 + 12345)
    item = staged_file(tmp_path)
    sink = FileSink(item)
    sink.fill_from(Pieces(data).readinto)
    sink.finish()
    assert item.path.read_bytes() == data
    assert (item.size, item.sha256) == (len(data), hashlib.sha256(data).hexdigest())


def test_fill_from_raises_a_full_disk_without_hanging(tmp_path):
    item = staged_file(tmp_path)
    sink = FileSink(item)
    os.close(sink.fd)
    sink.fd = os.open("/dev/full", os.O_WRONLY)  # every write: ENOSPC
    data = body_of(file_sink.FILL_BUFFERS * file_sink.FILL_BUFFER_BYTES * 3)
    with pytest.raises(OSError) as raised:
        sink.fill_from(Pieces(data).readinto)
    assert raised.value.errno == errno.ENOSPC
    sink.abandon()
    assert sink.fd is None


def test_fill_from_stops_its_helpers_when_the_reader_fails(tmp_path):
    item = staged_file(tmp_path)
    sink = FileSink(item)
    pieces = Pieces(body_of(3 * file_sink.FILL_BUFFER_BYTES))

    def cut(view: memoryview) -> int:
        if pieces.at >= 2 * file_sink.FILL_BUFFER_BYTES:
            raise ClientDisconnected()
        return pieces.readinto(view)

    before = threading.active_count()
    with pytest.raises(ClientDisconnected):
        sink.fill_from(cut)
    assert threading.active_count() == before  # hashing and writing threads joined
    sink.abandon()


def test_writeback_of_a_large_file_is_started_as_it_is_written(tmp_path, monkeypatch):
    """The disk is asked to write every WRITEBACK_BYTES as they come (the final fsync then
    has little left), in ranges that follow each other from the file's start."""
    if file_sink._start_writeback is None:
        assert not IN_CI, "CI runs on Linux with glibc: sync_file_range must be found there"
        pytest.skip("no sync_file_range in this C library")
    started: list[tuple[int, int]] = []
    real = file_sink._start_writeback

    def recorded(fd: int, offset: int, length: int) -> None:
        started.append((offset, length))
        real(fd, offset, length)

    monkeypatch.setattr(file_sink, "_start_writeback", recorded)
    data = body_of(3 * file_sink.WRITEBACK_BYTES + 5000)
    item = staged_file(tmp_path)
    sink = FileSink(item)
    sink.fill_from(Pieces(data).readinto)
    sink.finish()
    assert len(started) == 3
    ends = 0
    for offset, length in started:
        assert offset == ends and length >= file_sink.WRITEBACK_BYTES
        ends = offset + length
    assert item.path.read_bytes() == data
