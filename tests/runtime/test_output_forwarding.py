"""Issue 10, finding 4: `scanner run`'s output going to a full disk (ENOSPC), or to a reader that
stopped reading, must never stop the parts: lines are dropped and counted, never waited for,
and once writing works again one line says how many were lost."""

from __future__ import annotations

import errno
import io
import subprocess
import sys
import threading
import time
from pathlib import Path

from scanner_app.config import load_settings
from scanner_app.runtime.output import LineSink
from scanner_app.runtime.parts import Part
from scanner_app.runtime.supervisor import Supervisor
from tests.runtime.procs import http, station_pids
from tests.support import cli, free_port, process_env, station_env, wait_until


class FullDisk:
    """A text stream on a full disk: every write fails with ENOSPC until `free()`."""

    def __init__(self) -> None:
        self.full = True
        self.written: list[str] = []
        self.failures = 0

    def write(self, text: str) -> int:
        if self.full:
            self.failures += 1
            raise OSError(errno.ENOSPC, "No space left on device")
        self.written.append(text)
        return len(text)

    def flush(self) -> None:
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")

    def free(self) -> None:
        self.full = False


class StuckReader:
    """A stream whose writes block until released (a terminal nobody reads)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.release.wait()
        return len(text)

    def flush(self) -> None:
        pass


def test_sink_drops_lines_on_a_full_disk_and_reports_them_once_space_is_back():
    out = FullDisk()
    sink = LineSink(out)
    for n in range(50):
        sink.say(f"line {n}", "worker")  # never raises
    wait_until(lambda: out.failures >= 50, 5, "the writer to try every line")
    out.free()
    sink.say("after", "worker")
    sink.close()
    assert out.written[0].strip() == "run | 50 lines of output were lost (No space left on device)."
    assert out.written[1].strip() == "worker | after"
    assert sink.dropped_total == 50


def test_sink_never_blocks_a_caller_when_the_reader_stops_reading():
    out = StuckReader()
    sink = LineSink(out, max_queued=100)
    started = time.monotonic()
    for n in range(10_000):
        sink.say(f"line {n}")
    assert time.monotonic() - started < 2
    assert sink.dropped_total >= 10_000 - 101
    out.release.set()
    sink.close()


def _noisy_part(marker: Path) -> Part:
    # 4 MB of output, far beyond a pipe's 64 KiB buffer, then a sign that it was not blocked.
    code = (f"import sys\nfor n in range(40000): print('x' * 100, n)\n"
            f"open({str(marker)!r}, 'w').close()\nimport time; time.sleep(60)\n")
    return Part("noisy", "the noisy part", [sys.executable, "-c", code])


def _run_supervisor(tmp_path: Path, out, marker: Path) -> tuple[int, Supervisor]:
    settings = load_settings(env=station_env(tmp_path, SCANNER_REDIS_URL="redis://127.0.0.1:1"))
    supervisor = Supervisor(settings, out=out, stop_grace=5, parts=[_noisy_part(marker)],
                            migrate=False, subreaper=False)
    stopper = threading.Thread(target=lambda: (
        wait_until(marker.exists, 60, "the noisy part to get its output out"),
        supervisor.request_stop()), daemon=True)
    stopper.start()
    code = supervisor.run()  # the main thread: it installs signal handlers
    stopper.join(5)
    return code, supervisor


def test_parts_keep_running_while_the_output_disk_is_full(tmp_path: Path):
    marker = tmp_path / "got-through"
    out = FullDisk()
    code, supervisor = _run_supervisor(tmp_path, out, marker)
    assert marker.exists() and code == 0
    assert supervisor.sink.dropped_total > 40000


def test_parts_keep_running_while_nobody_reads_the_output(tmp_path: Path):
    marker = tmp_path / "got-through"
    out = StuckReader()
    try:
        code, supervisor = _run_supervisor(tmp_path, out, marker)
    finally:
        out.release.set()
    assert marker.exists() and code == 0
    assert supervisor.sink.dropped_total > 0


def test_scanner_run_with_its_output_on_a_full_device_keeps_serving(tmp_path: Path):
    station_dir = tmp_path / "st"
    station_dir.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open("/dev/full", "w") as full:  # every write: ENOSPC
        station = subprocess.Popen(cli("run", "--port", str(port)), env=process_env(station_dir),
                                   stdin=subprocess.DEVNULL, stdout=full,
                                   stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: _healthz(base) == 200, 90, "/healthz to answer 200")
        for _ in range(20):  # requests, and the worker's log lines, keep going
            assert _healthz(base) == 200
            time.sleep(0.1)
        station.send_signal(2)
        station.wait(60)
    finally:
        if station.poll() is None:
            station.kill()
            station.wait(10)
    assert "Traceback" not in station.stderr.read()
    wait_until(lambda: not station_pids(station_dir), 20, "every part to stop")


def _healthz(base: str) -> int | None:
    try:
        return http("GET", f"{base}/healthz", timeout=2)[0]
    except OSError:
        return None


def test_a_supervisor_that_is_no_subreaper_leaves_its_hosts_children_alone(tmp_path: Path):
    """Run inside another program (here pytest), the supervisor's stop must not take that
    program's own children for orphans of its parts: it once killed the suite's Redis."""
    neighbour = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        marker = tmp_path / "got-through"
        code, _ = _run_supervisor(tmp_path, io.StringIO(), marker)
        assert code == 0
        assert neighbour.poll() is None, "the supervisor killed a process it did not start"
    finally:
        neighbour.kill()
        neighbour.wait(10)
