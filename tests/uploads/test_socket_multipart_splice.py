"""A large multipart file part spliced from gunicorn's socket into its file
(SocketMultipart.splice_part): the delimiter found by the helper thread wherever the reads,
pipe fills and look-ahead cut it, what was spliced past it handed back to the decoder, and
the failures (full disk, refused splice, a body without the delimiter) as on the read path.
Real gunicorn parser on a socket pair, real pipes and files, the intake's own _decode."""

from __future__ import annotations

import errno
import hashlib
import os
import random
import stat
import threading

import pytest
from werkzeug.exceptions import ClientDisconnected

from scanner_app.uploads import socket_multipart
from tests.conftest import IN_CI
from tests.uploads.test_socket_multipart import DELIMITER, MB, body_of, decode_over_socket

pytestmark = pytest.mark.skipif(not hasattr(os, "splice") and not IN_CI,
                                reason="splice is Linux's")

NEXT_REQUEST = b"GET /next HTTP/1.1\r\nHost: s\r\n\r\n"


def hash_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "upload-hash"]


def near_misses(size: int, rng: random.Random) -> bytes:
    """Starts of the delimiter of every length, one after another, some apart by an "x" or
    two: any place a read, a pipe fill or the look-ahead ends cuts one. (Neither "x" nor
    CR, which begins each, ever continues a start, so the whole delimiter never occurs.)"""
    out = bytearray()
    while len(out) < size:
        out += DELIMITER[:rng.randrange(1, len(DELIMITER))] + b"x" * rng.randrange(3)
    return bytes(out[:size])


def spliced_bytes(monkeypatch) -> list[int]:
    """How many bytes each splice into a regular file moved (the real splice doing it)."""
    moved: list[int] = []
    real = os.splice

    def counted(src: int, dst: int, count: int, *args, **kwargs) -> int:
        got = real(src, dst, count, *args, **kwargs)
        if stat.S_ISREG(os.fstat(dst).st_mode):
            moved.append(got)
        return got

    monkeypatch.setattr(os, "splice", counted)
    return moved


@pytest.mark.parametrize("extra", range(0, 80, 9))
def test_the_delimiter_is_found_across_every_edge(tmp_path, monkeypatch, extra):
    """Tiny search reads (97 bytes, so each moves on 72), a 4 KiB pipe and an 8 KiB
    look-ahead: the data's end meets them at every offset, and inside the data every read
    ends within a start of the delimiter."""
    monkeypatch.setattr(socket_multipart, "SCAN_READ_BYTES", 97)
    monkeypatch.setattr(socket_multipart, "PIPE_BYTES", 4096)
    monkeypatch.setattr(socket_multipart, "LOOKAHEAD_BYTES", 8192)
    moved = spliced_bytes(monkeypatch)
    rng = random.Random(extra)
    data = near_misses(MB + extra, rng)
    tail = near_misses(3000, rng)
    staged, parser = decode_over_socket(
        body_of([("files", "a.bin", data), ("files", "b.bin", tail)]), tmp_path,
        after=NEXT_REQUEST)
    assert [f.path.read_bytes() for f in staged.files] == [data, tail]
    assert staged.files[0].sha256 == hashlib.sha256(data).hexdigest()
    assert staged.files[0].size == len(data)
    assert sum(moved) > MB // 2  # the spliced path it was
    assert next(parser).path == "/next"
    assert not hash_threads()


@pytest.mark.parametrize("lookahead", [64 * 1024, 64 * MB])
def test_what_was_spliced_past_a_part_goes_back_to_the_decoder(tmp_path, monkeypatch,
                                                               lookahead):
    """64 KiB: each large part is spliced, a little past its end, and what follows is read
    back and parsed. 64 MiB, the search held back until the body is all in: the whole body
    is spliced into the first file, and everything after its data (megabytes, more than the
    decoder takes at once) is read back and parsed."""
    monkeypatch.setattr(socket_multipart, "LOOKAHEAD_BYTES", lookahead)
    scans: list[object] = []
    real_init = socket_multipart._PartScan.__init__

    def counted(self, *args) -> None:
        real_init(self, *args)
        scans.append(self)

    monkeypatch.setattr(socket_multipart._PartScan, "__init__", counted)
    if lookahead > MB:
        real_wait = socket_multipart._PartScan._wait_for

        def wait_for_all(self, need: int) -> bool:
            with self._changed:
                self._changed.wait_for(lambda: self._stopped or self._final)
            return real_wait(self, need)

        monkeypatch.setattr(socket_multipart._PartScan, "_wait_for", wait_for_all)
    rng = random.Random(lookahead)
    parts: list[tuple[str, str | None, bytes]] = [
        ("files", "a.bin", near_misses(2 * MB + 1, rng)),
        ("files", "b.bin", rng.randbytes(5 * MB)),
        ("session_id", None, b"7"),
        ("files", "c.bin", rng.randbytes(5000)),
        ("other", "x.bin", rng.randbytes(MB + 5)),
        ("files", "d.bin", near_misses(2 * MB, rng)),
    ]
    staged, parser = decode_over_socket(body_of(parts), tmp_path, after=NEXT_REQUEST)
    sent = [(filename, data) for name, filename, data in parts if name == "files"]
    assert [(f.filename, f.path.read_bytes()) for f in staged.files] == sent
    assert [(f.size, f.sha256) for f in staged.files] == [
        (len(data), hashlib.sha256(data).hexdigest()) for _, data in sent]
    assert staged.fields == {"session_id": "7"}
    assert next(parser).path == "/next"
    assert not hash_threads()
    # 64 KiB: a.bin, b.bin (its start among the read-back bytes) and d.bin spliced; 64 MiB:
    # only a.bin, the rest held whole in `pending` and parsed by the decoder.
    assert len(scans) == (3 if lookahead < MB else 1)


def test_a_full_disk_mid_part_raises_without_hanging(tmp_path, monkeypatch):
    real, calls = os.splice, []

    def filling(src: int, dst: int, count: int, *args, **kwargs) -> int:
        if stat.S_ISREG(os.fstat(dst).st_mode):
            calls.append(count)
            if len(calls) > 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, count, *args, **kwargs)

    monkeypatch.setattr(os, "splice", filling)
    body = body_of([("files", "a.bin", os.urandom(6 * MB))])
    with pytest.raises(OSError) as raised:
        decode_over_socket(body, tmp_path)
    assert raised.value.errno == errno.ENOSPC
    assert len(calls) == 3
    assert not hash_threads()


@pytest.mark.parametrize("refused_side", ["socket", "file"])
def test_a_refused_first_splice_reads_the_part_instead(tmp_path, monkeypatch, refused_side):
    """A socket or file system that takes no splice (EINVAL on the first one): what is in the
    pipe goes back to the part's bytes, and the part is read into buffers, exact."""
    real, refused = os.splice, []

    def refusing(src: int, dst: int, count: int, *args, **kwargs) -> int:
        to_file = stat.S_ISREG(os.fstat(dst).st_mode)
        if to_file == (refused_side == "file"):
            refused.append(count)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(src, dst, count, *args, **kwargs)

    monkeypatch.setattr(os, "splice", refusing)
    data = near_misses(3 * MB, random.Random(3))
    staged, parser = decode_over_socket(body_of([("files", "a.bin", data)]), tmp_path,
                                        after=NEXT_REQUEST)
    assert staged.files[0].path.read_bytes() == data
    assert staged.files[0].sha256 == hashlib.sha256(data).hexdigest()
    assert len(refused) == 1  # tried once per part, then never again
    assert next(parser).path == "/next"


@pytest.mark.parametrize("path", ["splice", "read"])
def test_a_body_that_ends_without_the_delimiter_fails_as_before(tmp_path, monkeypatch, path):
    """All of Content-Length arrives, but the part never ends: the decoder says so."""
    if path == "read":
        monkeypatch.delattr(os, "splice")
    body = body_of([("files", "a.bin", os.urandom(2 * MB))])
    body = body[:body.rindex(DELIMITER)] + DELIMITER[:-1]  # the last byte is not there
    with pytest.raises((ValueError, ClientDisconnected)) as raised:
        decode_over_socket(body, tmp_path)
    assert not hash_threads()
    monkeypatch.undo()
    assert type(raised.value).__name__ in ("ValueError", "ClientDisconnected")


def test_splicing_waits_for_the_search_past_the_lookahead(tmp_path, monkeypatch):
    """A search far slower than the splicing (64-byte reads): the socket is spliced from
    only while the file holds at most LOOKAHEAD_BYTES not yet searched, so what is read back
    after the delimiter stays bounded whatever the file's size."""
    monkeypatch.setattr(socket_multipart, "SCAN_READ_BYTES", 64)
    monkeypatch.setattr(socket_multipart, "PIPE_BYTES", 4096)
    monkeypatch.setattr(socket_multipart, "LOOKAHEAD_BYTES", 64 * 1024)
    scans: list[socket_multipart._PartScan] = []
    real_init, real_splice = socket_multipart._PartScan.__init__, os.splice

    def init(self, *args) -> None:
        real_init(self, *args)
        scans.append(self)

    unsearched: list[int] = []

    def spied(src: int, dst: int, count: int, *args, **kwargs) -> int:
        if scans and stat.S_ISFIFO(os.fstat(dst).st_mode):  # socket -> pipe
            unsearched.append(scans[-1]._end - scans[-1].data_end)
        return real_splice(src, dst, count, *args, **kwargs)

    monkeypatch.setattr(socket_multipart._PartScan, "__init__", init)
    monkeypatch.setattr(os, "splice", spied)
    data = os.urandom(2 * MB)
    staged, _ = decode_over_socket(body_of([("files", "a.bin", data)]), tmp_path)
    assert staged.files[0].path.read_bytes() == data
    assert len(unsearched) > 100
    assert max(unsearched) <= 64 * 1024
