"""Benchmark: how fast `scanner run` answers and how much memory the idle station takes
(issue 15).

1. Start: `scanner run` on mock hardware in a fresh temp data dir (it migrates, starts its
   private Redis, the web server, three workers and the button daemon); time from start to
   the first 200 of GET /healthz (200 needs the database, Redis and a scan worker).
   Baseline, same run: a bare Flask app with one /healthz route on gunicorn with the same
   worker settings (one gthread worker, 8 threads), start to its first 200.
   Target: ratio <= 4. Below it, the time since start of each phase of the start-up (the
   lines `scanner run` prints as they come).
2. Memory: once the station is idle (BENCH_FOOTPRINT_SETTLE seconds after its first 200),
   PSS from /proc/<pid>/smaps_rollup summed over `scanner run` and every process under it
   (supervisor, gunicorn master and worker, workers, button daemon, redis-server).
   Printed beside the bare gunicorn + Flask's PSS. Target: <= 180 MB.

Run alone: python -m bench footprint
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

START_TARGET = 4.0
PSS_TARGET_MB = 180.0
SETTLE = float(os.environ.get("BENCH_FOOTPRINT_SETTLE", "8"))
TIMEOUT = 120.0

BARE_APP = '''
from flask import Flask

app = Flask(__name__)


@app.get("/healthz")
def healthz():
    return {"status": "ok"}
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthz_status(port: int) -> int | None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthz", headers={"Accept": "application/json"})
        status = conn.getresponse().status
        conn.close()
        return status
    except OSError:
        return None


def time_to_200(process: subprocess.Popen, port: int, started: float) -> float:
    deadline = started + TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the process exited with {process.returncode} before answering")
        if healthz_status(port) == 200:
            return time.monotonic() - started
        time.sleep(0.02)
    raise RuntimeError(f"no 200 from /healthz within {TIMEOUT:.0f} s")


def tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def command_name(pid: int) -> str:
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        comm = ""
    if comm.startswith("scanner-"):  # a part forked by scanner run (runtime/zygote.py)
        return comm
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [w.decode(errors="replace") for w in raw if w]
    if "scanner_app.cli" in words:
        words = words[words.index("scanner_app.cli") + 1:]
        return "scanner " + " ".join(words[:3])
    return " ".join(Path(w).name if i == 0 else w for i, w in enumerate(words[:2]))


def tree_pss(pid: int) -> tuple[float, list[tuple[int, str, float]]]:
    rows = [(p, command_name(p), pss_kb(p) / 1024) for p in tree(pid)]
    return sum(r[2] for r in rows), rows


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def run_bare(tmp: Path) -> tuple[float, float]:
    (tmp / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "8",
         "--worker-class", "gthread", "--bind", f"127.0.0.1:{port}", "bare_app:app"],
        cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, process_group=0)
    try:
        seconds = time_to_200(process, port, started)
        time.sleep(min(SETTLE, 3))
        pss, _ = tree_pss(process.pid)
    finally:
        stop(process)
    return seconds, pss


# Lines of `scanner run` whose time since start is printed: where the start-up time goes.
PHASES = (
    ("loaded the station's modules", "modules preloaded"),
    ("database is up to date", "database ready"),
    ("private Redis ready", "Redis ready"),
    ("started the web server", "web forked"),
    ("Scanning station web UI on", "web worker ready"),
    ("Listening on hardware", "scan worker listening"),
    ("Listening on uploads", "uploads worker listening"),
)


def _timed_lines(process: subprocess.Popen, started: float, log: Path) -> list[tuple[float, str]]:
    """Every output line with its time since start, read by a thread as it comes."""
    lines: list[tuple[float, str]] = []

    def read() -> None:
        with open(log, "w") as out:
            for line in process.stdout:
                lines.append((time.monotonic() - started, line.rstrip("\n")))
                out.write(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def phases(lines: list[tuple[float, str]]) -> list[tuple[float, str]]:
    found = []
    for needle, label in PHASES:
        at = next((t for t, line in lines if needle in line), None)
        if at is not None:
            found.append((at, label))
    return sorted(found)


def run_station(tmp: Path) -> tuple[float, float, list[tuple[int, str, float]],
                                     list[tuple[float, str]]]:
    data_dir = tmp / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANNER_")}
    env.update(SCANNER_DATA_DIR=str(data_dir), SCANNER_HAL="mock", SCANNER_TIMEZONE="UTC",
               PYTHONUNBUFFERED="1")
    port = free_port()
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "scanner_app.cli", "run", "--port", str(port)], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
        process_group=0)
    lines = _timed_lines(process, started, tmp / "station.log")
    try:
        seconds = time_to_200(process, port, started)
        time.sleep(SETTLE)
        pss, rows = tree_pss(process.pid)
    except RuntimeError:
        print("\n".join(line for _, line in lines[-40:]))
        raise
    finally:
        stop(process)
    return seconds, pss, rows, phases(lines)


def main(argv: list[str] | None = None) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-footprint-") as tmp_name:
        tmp = Path(tmp_name)
        bare_seconds, bare_pss = run_bare(tmp)
        seconds, pss, rows, timeline = run_station(tmp)
    ratio = seconds / bare_seconds
    start_ok, pss_ok = ratio <= START_TARGET, pss <= PSS_TARGET_MB
    print(f"start to first 200 on /healthz: scanner run {seconds:5.2f} s   bare gunicorn+Flask "
          f"{bare_seconds:5.2f} s   ratio {ratio:5.1f}   target <= {START_TARGET:g}   "
          f"{'OK' if start_ok else 'MISSED'}")
    print(f"idle memory (PSS, whole tree): station {pss:6.1f} MB   bare gunicorn+Flask "
          f"{bare_pss:6.1f} MB   ratio {pss / bare_pss:5.1f}   target <= {PSS_TARGET_MB:g} MB   "
          f"{'OK' if pss_ok else 'MISSED'}")
    for at, label in timeline:
        print(f"    {at:5.2f} s  {label}")
    print(f"    {seconds:5.2f} s  first 200 on /healthz")
    for pid, name, mb in sorted(rows, key=lambda r: -r[2]):
        print(f"    {mb:6.1f} MB  {pid:>7}  {name}")
    return 0 if start_ok and pss_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
