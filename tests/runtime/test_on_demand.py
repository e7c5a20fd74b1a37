"""`scanner run`'s processing worker starts on demand (issue 15: 30 MB less at idle): none at
idle; a job on the processing queue forks one, which runs it and exits 0 after its idle grace
without being restarted; a killed one is a failure (restarted at once, as any part); stopping
the station stops a running one. Real `scanner run`, real Redis, real RQ jobs."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus

from scanner_app.runtime.on_demand import IDLE_EXIT_SECONDS, ON_DEMAND_ENV, QueueWatch
from scanner_app.station.health import PROCESSING_ON_DEMAND_ENV
from tests.runtime.procs import parent_of, pid_alive
from tests.runtime.test_supervision import healthz
from tests.support import Proc, cli, free_port, process_env, wait_until

STARTED = "started the processing worker"
IDLE_STOP = "the processing worker (scanner worker --queues processing) is idle and has stopped"


@pytest.fixture
def station(tmp_path: Path):
    data_dir = tmp_path / "st"  # short: the Redis socket path must stay under 108 bytes
    data_dir.mkdir()
    port = free_port()
    proc = Proc(cli("run", "--port", str(port)), process_env(data_dir))
    try:
        wait_until(lambda: healthz(f"http://127.0.0.1:{port}") == 200, 90, "/healthz 200")
        # The button daemon starts when the processing queue is first looked at.
        proc.wait_line("Button daemon ready", 30)
        redis = Redis(unix_socket_path=str(data_dir / "redis.sock"))
        yield proc, redis, port
        redis.close()
    finally:
        proc.kill()


def _processing_pids(proc: Proc) -> list[int]:
    return [int(m.group(1)) for line in proc.lines
            if (m := re.search(STARTED + r" .*, pid (\d+)", line))]


def _comm_pids(name: str) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name and pid_alive(int(entry.name)):
                    found.add(int(entry.name))
            except OSError:
                pass
    return found


def test_the_processing_worker_runs_only_while_jobs_wait(station):
    proc, redis, _ = station
    supervisor = proc.popen.pid
    assert _processing_pids(proc) == []
    assert not {p for p in _comm_pids("scanner-process") if parent_of(p) == supervisor}

    queue = Queue("processing", connection=redis)
    first = queue.enqueue("os.getpid")
    wait_until(lambda: first.get_status(refresh=True) == JobStatus.FINISHED, 60, "the first job")
    [pid] = _processing_pids(proc)
    assert parent_of(pid) == supervisor  # forked by the supervisor, as the other parts
    # Its idle grace over, it exits 0: said as such, not as a failure, and not restarted.
    proc.wait_line(IDLE_STOP, IDLE_EXIT_SECONDS + 30)
    wait_until(lambda: not pid_alive(pid), 10, "the idle worker to be gone")
    assert "processing worker (scanner worker --queues processing) stopped unexpectedly" \
        not in proc.output
    assert _processing_pids(proc) == [pid]

    # The next job forks it again, once.
    second = queue.enqueue("os.getpid")
    wait_until(lambda: second.get_status(refresh=True) == JobStatus.FINISHED, 60, "job two")
    assert len(_processing_pids(proc)) == 2
    proc.signal(signal.SIGINT)
    assert proc.wait(60) == 0, proc.output
    assert "Traceback" not in proc.output


def test_a_killed_processing_worker_is_restarted_and_leaves_when_idle(station):
    proc, redis, _ = station
    job = Queue("processing", connection=redis).enqueue("time.sleep", 120, job_timeout=300)
    wait_until(lambda: job.get_status(refresh=True) == JobStatus.STARTED, 60, "the job to start")
    [pid] = _processing_pids(proc)
    os.kill(pid, signal.SIGKILL)
    proc.wait_line("the processing worker (scanner worker --queues processing) stopped "
                   "unexpectedly (exit code -9); restarting it", 15)
    again = wait_until(lambda: (p := _processing_pids(proc)) and len(p) == 2 and p[1], 30,
                       "the processing worker to be forked again")
    # Its work-horse died with it (parent-death signal): the job no longer runs anywhere.
    wait_until(lambda: not _comm_pids_in_group(pid), 10, "the killed worker's horse to die")
    # The restarted worker finds nothing queued and leaves cleanly after its grace.
    proc.wait_line(IDLE_STOP, IDLE_EXIT_SECONDS + 30)
    wait_until(lambda: not pid_alive(again), 10, "the restarted worker to exit")
    assert len(_processing_pids(proc)) == 2
    assert Job.fetch(job.id, connection=redis).get_status() != JobStatus.FINISHED
    proc.signal(signal.SIGINT)
    assert proc.wait(60) == 0, proc.output


def _comm_pids_in_group(group: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == group and pid_alive(int(entry.name)):
                    found.add(int(entry.name))
            except OSError:
                pass
    return found


def test_stopping_the_station_stops_a_running_processing_worker(station):
    proc, redis, _ = station
    job = Queue("processing", connection=redis).enqueue("time.sleep", 120, job_timeout=300)
    wait_until(lambda: job.get_status(refresh=True) == JobStatus.STARTED, 60, "the job to start")
    [pid] = _processing_pids(proc)
    proc.signal(signal.SIGINT)
    assert proc.wait(60) == 0, proc.output
    assert not pid_alive(pid)
    assert not _comm_pids_in_group(pid)


def test_the_station_page_environment_name_matches():
    # The supervisor sets it; the health check reads it (not imported: layers).
    assert ON_DEMAND_ENV == PROCESSING_ON_DEMAND_ENV


def test_the_queue_watch_asks_at_most_once_a_second_and_never_raises(tmp_path: Path):
    from scanner_app.config import load_settings
    from tests.support import station_env

    settings = load_settings(env=station_env(str(tmp_path / "data")))
    watch = QueueWatch(settings, "processing", first_at=10.0)
    assert watch.jobs_waiting(5.0) is False and watch.next_at == 10.0  # not yet time: not asked
    assert watch.jobs_waiting(10.0) is False  # no Redis there: no, without raising
    assert watch.next_at == 11.0
