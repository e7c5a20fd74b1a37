"""The station's processing worker runs at SCHED_IDLE (issue 13: a reconstruction never
slows a scan; nice 10 alone let one slow a mock scan by half, see docs/performance.md)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from scanner_app.runtime.supervisor import default_parts

pytestmark = pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux only")


def test_scanner_run_starts_the_processing_worker_idle():
    commands = {part.name: part.args for part in default_parts("127.0.0.1", 5000)}
    assert "--idle" in commands["processing"]
    assert all("--idle" not in command for name, command in commands.items()
               if name != "processing")


def test_idle_worker_and_the_processes_and_threads_it_starts_are_sched_idle():
    script = (
        "import os, threading\n"
        "from scanner_app.cli.worker import run_when_idle\n"
        "assert os.sched_getscheduler(0) != os.SCHED_IDLE\n"
        "assert run_when_idle()\n"
        "seen = []\n"
        "t = threading.Thread(target=lambda: seen.append(os.sched_getscheduler(0)))\n"
        "t.start(); t.join()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(0 if os.sched_getscheduler(0) == os.SCHED_IDLE else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print(os.sched_getscheduler(0), seen[0], os.waitstatus_to_exitcode(status))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    policy, thread_policy, child_code = (int(word) for word in out.stdout.split())
    assert policy == os.SCHED_IDLE
    assert thread_policy == os.SCHED_IDLE
    assert child_code == 0
