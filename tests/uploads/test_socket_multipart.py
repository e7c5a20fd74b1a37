"""Multipart bodies read from gunicorn's socket (uploads/socket_multipart.py): the data of a
large file part skips werkzeug's decoder, everything else goes through it. Real gunicorn
parser on a socket pair, the intake's own _decode; every file compared byte for byte, each
test both ways a large part can go: spliced (Linux) and read into the sink's buffers."""

from __future__ import annotations

import hashlib
import os
import random
import socket
import threading

import pytest
from gunicorn.config import Config
from gunicorn.http.parser import RequestParser
from werkzeug.exceptions import ClientDisconnected
from werkzeug.wrappers import Request

from scanner_app.uploads import file_sink, socket_multipart
from scanner_app.uploads.intake import StagedRequest, _decode
from tests.conftest import IN_CI

BOUNDARY = "sockMultipartBoundary"
DELIMITER = b"\r\n--" + BOUNDARY.encode()
MB = 1024 * 1024


@pytest.fixture(params=["splice", "read"])
def large_part_path(request, monkeypatch) -> str:
    """"splice": SocketMultipart.splice_part; "read": no os.splice, so fill_from(part_data)."""
    if request.param == "read":
        monkeypatch.delattr(os, "splice")
    elif not hasattr(os, "splice") and not IN_CI:  # CI is Linux: there it must not skip
        pytest.skip("splice is Linux's")
    return request.param


def tricky_data(size: int, rng: random.Random) -> bytes:
    """Random bytes with starts of the delimiter (and whole CR LF pairs) sprinkled in, some
    right at fill_from's buffer edges."""
    data = bytearray(rng.randbytes(size))
    spots = [rng.randrange(size) for _ in range(40)]
    edges = range(1, size // file_sink.FILL_BUFFER_BYTES)
    spots += [k * file_sink.FILL_BUFFER_BYTES - d for k in edges
              for d in (1, 3, len(DELIMITER) - 1)]
    for spot in spots:
        piece = DELIMITER[:rng.randrange(1, len(DELIMITER))]
        data[spot:spot + len(piece)] = piece
    return bytes(data[:size])


def body_of(parts: list[tuple[str, str | None, bytes]]) -> bytes:
    out = []
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (
            f'; filename="{filename}"' if filename is not None else "")
        out.append(f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
                   "Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    out.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(out)


def decode_over_socket(body: bytes, tmp_path, cut: int | None = None,
                       after: bytes = b"") -> tuple[StagedRequest, RequestParser]:
    server, client = socket.socketpair()
    server.settimeout(20)
    head = (f"POST /api/v1/uploads HTTP/1.1\r\nHost: station\r\nContent-Type: multipart/"
            f"form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n\r\n").encode()

    def send() -> None:
        try:
            client.sendall(head + (body[:cut] if cut is not None else body + after))
            if cut is not None:
                client.shutdown(socket.SHUT_WR)
        except OSError:  # the server gave up on the body (a test of a failure)
            pass

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    parser = RequestParser(Config(), server, ("127.0.0.1", 1))
    request = next(parser)
    environ = {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(body)),
               "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
               "wsgi.input": request.body, "gunicorn.socket": server}
    staged = StagedRequest(tmp_path / "staged")
    staged.directory.mkdir()
    try:
        _decode(Request(environ), BOUNDARY.encode(), staged, 10 * 1024 * MB)
    except BaseException:
        server.shutdown(socket.SHUT_RDWR)  # a sender blocked on the untaken rest stops
        raise
    finally:
        sender.join(20)
        client.close()
    return staged, parser


@pytest.mark.parametrize("seed", range(6))
def test_parts_of_every_size_arrive_exact(tmp_path, seed, large_part_path):
    rng = random.Random(seed)
    parts: list[tuple[str, str | None, bytes]] = [("session_id", None, b"7")]
    for index in range(rng.randrange(2, 5)):
        size = rng.choice([0, 1, 100, 70_000, MB + rng.randrange(3 * MB)])
        parts.append(("files", f"f{index}.bin", tricky_data(size, rng) if size else b""))
    parts.insert(rng.randrange(1, len(parts)), ("other", "x.bin", rng.randbytes(2 * MB)))
    staged, parser = decode_over_socket(body_of(parts), tmp_path,
                                        after=b"GET /next HTTP/1.1\r\nHost: s\r\n\r\n")
    sent = [(filename, data) for name, filename, data in parts
            if name == "files" and not (filename == "" and not data)]
    assert [(f.filename, f.path.read_bytes()) for f in staged.files] == sent
    assert [f.sha256 for f in staged.files] == [hashlib.sha256(d).hexdigest() for _, d in sent]
    assert staged.fields == {"session_id": "7"}
    assert next(parser).path == "/next"  # nothing read past the body


@pytest.mark.parametrize("short", [1, 2, len(DELIMITER) - 1, len(DELIMITER), 0])
def test_a_delimiter_across_two_buffers_ends_the_part(tmp_path, short, large_part_path):
    """The part's data end `short` bytes before a buffer's end: the delimiter that follows
    starts in one of fill_from's buffers and ends in the next."""
    rng = random.Random(short)
    data = tricky_data(10 * file_sink.FILL_BUFFER_BYTES - short, rng)
    tail = rng.randbytes(5000)
    parts = [("files", "a.bin", data), ("files", "b.bin", tail)]
    staged, _ = decode_over_socket(body_of(parts), tmp_path)
    assert [f.path.read_bytes() for f in staged.files] == [data, tail]


def test_a_large_part_takes_the_fast_path(tmp_path, monkeypatch, large_part_path):
    calls = []
    real_part_data = socket_multipart.SocketMultipart.part_data
    real_splice = getattr(os, "splice", None)

    def counted(self, view):
        got = real_part_data(self, view)
        calls.append(got)
        return got

    def spliced(src: int, dst: int, count: int, *args, **kwargs) -> int:
        got = real_splice(src, dst, count, *args, **kwargs)
        calls.append(got if src == server_fd[0] else 0)  # socket -> pipe
        return got

    server_fd: list[int] = []
    real_socketpair = socket.socketpair

    def socketpair():
        pair = real_socketpair()
        server_fd.append(pair[0].fileno())
        return pair

    monkeypatch.setattr(socket, "socketpair", socketpair)
    monkeypatch.setattr(socket_multipart.SocketMultipart, "part_data", counted)
    if large_part_path == "splice":
        monkeypatch.setattr(os, "splice", spliced)
    data = os.urandom(4 * MB)
    staged, _ = decode_over_socket(body_of([("files", "big.bin", data)]), tmp_path)
    assert staged.files[0].path.read_bytes() == data
    assert sum(calls) > 3 * MB  # most of it never went through the decoder


def test_a_body_cut_inside_a_large_part_is_a_disconnect(tmp_path, large_part_path):
    body = body_of([("files", "big.bin", os.urandom(3 * MB))])
    with pytest.raises(ClientDisconnected):
        decode_over_socket(body, tmp_path, cut=2 * MB)


def test_a_delimiter_not_followed_by_a_line_break_is_data(tmp_path, large_part_path):
    """"\r\n--boundaryX" inside a large part: the fast path stops there, the decoder takes it
    for data and writes the rest of the part after what the fast path wrote."""
    rng = random.Random(5)
    data = rng.randbytes(2 * MB) + DELIMITER + b"X" + rng.randbytes(2 * MB + 3)
    staged, _ = decode_over_socket(body_of([("files", "a.bin", data)]), tmp_path)
    assert staged.files[0].path.read_bytes() == data
    assert staged.files[0].sha256 == hashlib.sha256(data).hexdigest()
