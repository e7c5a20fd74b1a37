"""Benchmark: uploads at disk speed (issue 15, rows "1 GiB upload" and "200 small images").

A real station on a fresh data dir: `scanner web` (gunicorn, as the station runs it), a real
uploads worker (`scanner worker --queues uploads`) and a private Redis. Two figures, each
measured against a baseline in the same run; each measurement sits between two runs of its
baseline and is compared with their mean (on a shared machine the load drifts by the second):

1. Big file: a BENCH_SPEED_MB (default 1024) MiB file in /tmp sent as one raw body
   (`PUT /api/v1/uploads?filename=...`) and as a multipart POST, each timed until the 201;
   baseline: `cp` of the same file onto the same disk plus an fsync. Ratio = cp time /
   upload time; target >= 0.5 for each. The stored file's size and sha256 are checked; the
   file is deleted afterwards. The page cache is flushed (sync) before each.
   BENCH_SPEED_ROUNDS (default 3) rounds of both; the figure is the median ratio. The client
   sends the file with sendfile (no copy through Python), so it is not the limit; the CPU
   seconds of the web process (with its worker) and of the client are printed beside it.
2. Small images: BENCH_SPEED_FILES (default 200) small JPEGs sent one per request
   (sequentially, on one kept-alive connection) against the same number of other images in
   one multipart request; each timed from the first byte sent until every image is processed
   (the session's captures_count, polled). Ratio = files/s one per request / files/s in one
   request; target >= 0.5.

Run alone: python -m bench upload_speed
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.upload_memory import _cli, _free_port, _wait_until_serving

MB = 1024 * 1024
BOUNDARY = "benchSpeedBoundary51c2"
BIG_TARGET = 0.5
SMALL_TARGET = 0.5


def _small_jpeg(seed: int) -> bytes:
    from PIL import Image

    img = Image.new("RGB", (64, 48), ((seed * 53) % 256, (seed * 7) % 256, 90))
    img.putpixel((0, 0), (seed % 256, (seed // 256) % 256, 7))
    buffer = io.BytesIO()
    img.save(buffer, "JPEG")
    return buffer.getvalue()


def _make_big_file(path: Path, size: int) -> str:
    block = bytearray(os.urandom(MB))
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for index in range(size // MB):
            block[:8] = index.to_bytes(8, "little")
            out.write(block)
            digest.update(block)
    return digest.hexdigest()


def _cp_fsync(source: Path, target: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["cp", str(source), str(target)], check=True)
    fd = os.open(target, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - started
    target.unlink()
    return seconds


def _send_file(conn: http.client.HTTPConnection, method: str, url: str, key: str,
               path: Path, headers: dict[str, str], head: bytes = b"", tail: bytes = b""
               ) -> tuple[int, dict]:
    """A request whose body is `head`, the file, `tail`: the file goes with sendfile (the
    kernel copies it from the page cache into the socket), so the client spends next to no
    CPU and the figure measures the server."""
    length = len(head) + path.stat().st_size + len(tail)
    conn.putrequest(method, url, skip_accept_encoding=True)
    for name, value in {"X-Api-Key": key, "Content-Length": str(length), **headers}.items():
        conn.putheader(name, value)
    conn.endheaders(head or None)
    with open(path, "rb") as source:
        conn.sock.sendfile(source)
    if tail:
        conn.sock.sendall(tail)
    response = conn.getresponse()
    data = response.read()
    return response.status, (json.loads(data) if data else {})


def _request(conn: http.client.HTTPConnection, method: str, url: str, key: str,
             body=None, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    conn.request(method, url, body=body, headers={"X-Api-Key": key, **(headers or {})})
    response = conn.getresponse()
    data = response.read()
    return response.status, (json.loads(data) if data else {})


def _multipart(files: list[tuple[str, bytes]], session_id: int | None = None) -> bytes:
    parts = []
    if session_id is not None:
        parts.append(f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"session_id\""
                     f"\r\n\r\n{session_id}\r\n".encode())
    for name, data in files:
        parts.append(f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; "
                     f"filename=\"{name}\"\r\nContent-Type: image/jpeg\r\n\r\n".encode())
        parts.append(data + b"\r\n")
    parts.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(parts)


def _new_session(conn, key: str, name: str) -> int:
    status, answer = _request(conn, "POST", "/api/v1/sessions", key,
                              json.dumps({"name": name, "make_current": False}),
                              {"Content-Type": "application/json"})
    if status != 201:
        raise RuntimeError(f"creating a session answered {status}: {answer}")
    return answer.get("session", answer)["id"]


def _wait_processed(port: int, key: str, session_id: int, count: int,
                    timeout: float = 300) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            _, answer = _request(conn, "GET", f"/api/v1/sessions/{session_id}", key)
            if answer.get("session", answer).get("captures_count", 0) >= count:
                return
            time.sleep(0.02)
    finally:
        conn.close()
    raise RuntimeError(f"session {session_id}: {count} uploads not processed in {timeout} s")


def _put(conn, key: str, path: Path, session_id: int) -> tuple[int, dict]:
    return _send_file(conn, "PUT", f"/api/v1/uploads?filename=big.bin&session_id={session_id}",
                      key, path, {"Content-Type": "application/octet-stream"})


def _post_big(conn, key: str, path: Path, session_id: int) -> tuple[int, dict]:
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"session_id\"\r\n\r\n"
            f"{session_id}\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode()
    return _send_file(conn, "POST", "/api/v1/uploads", key, path,
                      {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
                      head, f"\r\n--{BOUNDARY}--\r\n".encode())


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children still running (the gunicorn
    worker under `scanner web`)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                pids.extend(int(child) for child in children)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def _big(port: int, key: str, path: Path, sha256: str, data_dir: Path, web_pid: int,
         rounds: int) -> dict[str, list[tuple[float, float, float, float]]]:
    """{how: [(upload seconds, cp + fsync seconds, server CPU s, client CPU s) per round]}:
    each upload between two copies, the baseline their mean (the machine's load drifts; a
    baseline next to it is fairer). The CPU seconds say which side the time goes to."""
    size = path.stat().st_size
    results: dict[str, list[tuple[float, float, float, float]]] = {}
    copy_before = _cp_fsync(path, data_dir / "copy.bin")
    for round_number in range(rounds):
        for how, send in (("PUT", _put), ("POST multipart", _post_big)):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            try:
                session_id = _new_session(conn, key, f"bench {how} {round_number}")
                os.sync()
                server_cpu, client_cpu = _cpu_seconds(web_pid), time.process_time()
                started = time.perf_counter()
                status, answer = send(conn, key, path, session_id)
                seconds = time.perf_counter() - started
                server_cpu = _cpu_seconds(web_pid) - server_cpu
                client_cpu = time.process_time() - client_cpu
            finally:
                conn.close()
            stored = _check_big(status, answer, size, sha256, data_dir, "big.bin")
            stored.unlink()  # the next one is stored again, not a duplicate of it
            os.sync()
            copy_after = _cp_fsync(path, data_dir / "copy.bin")
            results.setdefault(how, []).append(
                (seconds, (copy_before + copy_after) / 2, server_cpu, client_cpu))
            copy_before = copy_after
    return results


def _check_big(status: int, answer: dict, size: int, sha256: str, data_dir: Path,
               name: str) -> Path:
    if status != 201:
        raise RuntimeError(f"the upload answered {status}: {answer}")
    upload = answer["uploads"][0]
    stored = (data_dir / "sessions" / str(answer["session_id"]) / "images" / "uploads"
              / str(upload["id"]) / name)
    if upload["size"] != size or upload["sha256"] != sha256 or stored.stat().st_size != size:
        raise RuntimeError(f"the stored file is wrong: {upload}")
    return stored


def _small_round(port: int, key: str, count: int, first_seed: int, one_each: bool) -> float:
    """Seconds from the first byte sent until `count` new images are processed, sent one
    per request (sequentially, on one kept-alive connection) or all in one request."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    how = "one per request" if one_each else "one request"
    try:
        session_id = _new_session(conn, key, f"bench {how} {first_seed}")
        files = [(f"i{seed:05d}.jpg", _small_jpeg(seed))
                 for seed in range(first_seed, first_seed + count)]
        bodies = ([_multipart([item], session_id) for item in files] if one_each
                  else [_multipart(files, session_id)])
        started = time.perf_counter()
        for body in bodies:
            status, answer = _request(
                conn, "POST", "/api/v1/uploads", key, body,
                {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
            if status != 201:
                raise RuntimeError(f"an upload ({how}) answered {status}: {answer}")
        _wait_processed(port, key, session_id, count)
        return time.perf_counter() - started
    finally:
        conn.close()


def _small(port: int, key: str, count: int) -> tuple[float, float]:
    """(seconds all in one request, seconds one per request): the singles between two batch
    runs, the baseline their mean."""
    before = _small_round(port, key, count, 1, one_each=False)
    one_each = _small_round(port, key, count, count + 1, one_each=True)
    after = _small_round(port, key, count, 2 * count + 1, one_each=False)
    return (before + after) / 2, one_each


def _setup(data_dir: Path, env: dict[str, str]) -> str:
    for args in (("db", "upgrade"), ("apikey", "create", "bench")):
        done = subprocess.run(_cli(*args), env=env, capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"scanner {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return done.stdout.strip().splitlines()[-1].split()[-1]


def main(argv: list[str] | None = None) -> int:
    from scanner_app.runtime.redis_server import PrivateRedis

    size_mb = int(os.environ.get("BENCH_SPEED_MB", "1024"))
    count = int(os.environ.get("BENCH_SPEED_FILES", "200"))
    rounds = int(os.environ.get("BENCH_SPEED_ROUNDS", "3"))
    with tempfile.TemporaryDirectory(prefix="bench-speed-", dir="/tmp") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        big = Path(tmp) / "big.bin"
        redis = PrivateRedis(data_dir).start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCANNER_")}
        env.update({
            "SCANNER_DATA_DIR": str(data_dir), "SCANNER_HAL": "mock",
            "SCANNER_TIMEZONE": "UTC", "SCANNER_MAX_UPLOAD_MB": str(size_mb + 64),
            "SCANNER_DISK_RESERVE_MB": "64", "SCANNER_REDIS_URL": redis.url,
        })
        processes: list[subprocess.Popen] = []
        try:
            key = _setup(data_dir, env)
            port = _free_port()
            processes.append(subprocess.Popen(_cli("web", "--port", str(port)), env=env,
                                              stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL))
            processes.append(subprocess.Popen(_cli("worker", "--queues", "uploads"), env=env,
                                              stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL))
            _wait_until_serving(port, processes[0])
            # Warm up both processes: imports, connections, Pillow, the first thumbnail.
            _small_round(port, key, 3, 60_000, one_each=True)

            in_one, one_each = _small(port, key, count)
            sha256 = _make_big_file(big, size_mb * MB)
            os.sync()  # each figure starts with nothing left to write back
            big_results = _big(port, key, big, sha256, data_dir, processes[0].pid, rounds)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
            redis.stop()
            big.unlink(missing_ok=True)
            shutil.rmtree(data_dir, ignore_errors=True)

    ok = True
    for how, runs in big_results.items():
        for seconds, copy_seconds, server_cpu, client_cpu in runs:
            print(f"upload_speed: {size_mb} MiB {how}: {seconds:.2f} s "
                  f"({size_mb / seconds:.0f} MiB/s); baseline cp + fsync {copy_seconds:.2f} s "
                  f"({size_mb / copy_seconds:.0f} MiB/s); ratio {copy_seconds / seconds:.2f}; "
                  f"CPU: server {server_cpu:.2f} s, client (sendfile) {client_cpu:.2f} s")
        ratio = statistics.median(copy_seconds / seconds for seconds, copy_seconds, *_ in runs)
        ok &= ratio >= BIG_TARGET
        print(f"upload_speed: {size_mb} MiB {how}: median ratio of {len(runs)} {ratio:.2f} "
              f"(target >= {BIG_TARGET}): {'OK' if ratio >= BIG_TARGET else 'MISSED'}")
    ratio = in_one / one_each
    ok &= ratio >= SMALL_TARGET
    print(f"upload_speed: {count} small images one per request: {one_each:.2f} s "
          f"({count / one_each:.0f} files/s); baseline all in one request {in_one:.2f} s "
          f"({count / in_one:.0f} files/s); ratio {ratio:.2f} (target >= {SMALL_TARGET}): "
          f"{'OK' if ratio >= SMALL_TARGET else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
