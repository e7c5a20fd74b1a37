"""Benchmark: a 1 GiB upload streams to disk; the web server's memory does not grow with it.

Starts `scanner web` (gunicorn: a master process and one gthread worker that runs the app) as
a subprocess on a fresh data dir, sends one file of BENCH_UPLOAD_MB megabytes (default 1024) in
a multipart POST /api/v1/uploads, generated on the fly by the client (never held in memory on
either side), and reads /proc/<pid>/status of both server processes: peak resident memory
(VmHWM) during the upload against the resident memory (VmRSS) just before it, added up. Also
checks the stored file's size and sha256, and how much the server wrote (/proc/<pid>/io wchar):
the body goes to disk once, not spooled to a temp file first and copied.

Targets: memory growth under BENCH_UPLOAD_MAX_GROWTH_PCT percent (default 10) of the file size;
bytes written under BENCH_UPLOAD_MAX_WRITE_RATIO (default 1.5) times the file size.
Run alone: python -m bench.upload_memory
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

MB = 1024 * 1024
BOUNDARY = "benchUploadBoundary7f3a"


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _io_bytes(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def _reset_peak(pid: int) -> bool:
    """Linux resets VmHWM to the current RSS when 5 is written to clear_refs."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "scanner_app.cli", *args]


class Body:
    """A multipart body of one file of `size` bytes, produced chunk by chunk."""

    def __init__(self, size: int, filename: str = "big.bin"):
        self.size = size
        self.head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; "
                     f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream"
                     "\r\n\r\n").encode()
        self.tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        self.sha256 = hashlib.sha256()
        self._block = bytearray(os.urandom(MB))

    @property
    def length(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    def chunks(self) -> Iterator[bytes]:
        yield self.head
        sent = 0
        index = 0
        while sent < self.size:
            self._block[:8] = index.to_bytes(8, "little")  # no two MBs alike
            chunk = bytes(self._block[: min(MB, self.size - sent)])
            self.sha256.update(chunk)
            sent += len(chunk)
            index += 1
            yield chunk
        yield self.tail


def _post(port: int, key: str, body: Body) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        conn.request("POST", "/api/v1/uploads", body=body.chunks(), headers={
            "X-Api-Key": key, "Content-Length": str(body.length),
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def _wait_until_serving(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"scanner web exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("scanner web did not answer in time")


def main(argv: list[str] | None = None) -> int:
    size_mb = int(os.environ.get("BENCH_UPLOAD_MB", "1024"))
    limit_pct = float(os.environ.get("BENCH_UPLOAD_MAX_GROWTH_PCT", "10"))
    max_write_ratio = float(os.environ.get("BENCH_UPLOAD_MAX_WRITE_RATIO", "1.5"))
    size = size_mb * MB
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
        data_dir = Path(tmp) / "data"
        spool = Path(tmp) / "spool"  # where a server that buffers bodies would put them
        spool.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCANNER_")}
        env.update({
            "SCANNER_DATA_DIR": str(data_dir), "SCANNER_HAL": "mock",
            "SCANNER_TIMEZONE": "UTC", "SCANNER_MAX_UPLOAD_MB": str(size_mb + 64),
            "SCANNER_DISK_RESERVE_MB": "64", "TMPDIR": str(spool),
        })
        for args in (("db", "upgrade"), ("apikey", "create", "bench")):
            done = subprocess.run(_cli(*args), env=env, capture_output=True, text=True,
                                  timeout=120)
            if done.returncode != 0:
                print(done.stdout, done.stderr)
                return 2
        key = done.stdout.strip().splitlines()[-1].split()[-1]

        port = _free_port()
        server = subprocess.Popen(_cli("web", "--port", str(port), "--threads", "4"), env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_until_serving(port, server)
            # Warm up: imports, the database connection, Pillow, the first thumbnail.
            status, _ = _post(port, key, Body(MB, "warmup.bin"))
            if status != 201:
                print(f"upload_memory: warm-up upload answered {status}")
                return 2
            # The master and its worker (the one that runs the app), measured together.
            pids = [server.pid, *_children(server.pid)]
            exact = all([_reset_peak(pid) for pid in pids])
            rss_before_kb = sum(_status_kb(pid, "VmRSS") for pid in pids)
            hwm_before_kb = sum(_status_kb(pid, "VmHWM") for pid in pids)
            baseline_kb = rss_before_kb if exact else hwm_before_kb
            written_before = sum(_io_bytes(pid, "wchar") for pid in pids)

            body = Body(size)
            started = time.perf_counter()
            status, answer = _post(port, key, body)
            seconds = time.perf_counter() - started
            peak_kb = sum(_status_kb(pid, "VmHWM") for pid in pids)
            written = sum(_io_bytes(pid, "wchar") for pid in pids) - written_before
            spooled = sum(f.stat().st_size for f in spool.rglob("*") if f.is_file())
        finally:
            server.terminate()
            server.wait(30)

        if status != 201:
            print(f"upload_memory: the upload answered {status}: {answer}")
            return 2
        upload = answer["uploads"][0]
        stored = (data_dir / "sessions" / str(answer["session_id"]) / "images" / "uploads"
                  / str(upload["id"]) / "big.bin")
        intact = (upload["size"] == size and upload["sha256"] == body.sha256.hexdigest()
                  and stored.stat().st_size == size)

    growth_mb = (peak_kb - baseline_kb) / 1024
    ratio = growth_mb / size_mb
    write_ratio = written / size
    ok = (intact and ratio * 100 < limit_pct and write_ratio < max_write_ratio
          and spooled == 0)
    note = "" if exact else " (peak could not be reset: measured from the earlier peak)"
    print(f"upload_memory: {size_mb} MB upload in {seconds:.1f} s ({size_mb / seconds:.0f} MB/s); "
          f"server ({len(pids)} processes) RSS before {rss_before_kb / 1024:.0f} MB, peak "
          f"{peak_kb / 1024:.0f} MB, growth {growth_mb:.1f} MB = {ratio * 100:.2f}% of the file "
          f"(target < {limit_pct:.0f}%){note}; wrote {written / MB:.0f} MB = "
          f"{write_ratio:.2f}x the file (target < {max_write_ratio:g}x), {spooled} bytes left in "
          f"TMPDIR; stored file {'intact' if intact else 'WRONG'}: {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
