"""The scan orchestrator: an RQ job on the `hardware` queue that drives the rig.

run_scan(scan_id) takes the scan the API queued (it never resolves or creates a session),
takes the hardware lock, opens the rig and the camera, homes (without a home switch: to the
0° the rig's saved position knows), then holds the motor from the first move to the last
frame: light on, exposure and white balance locked at the first frame (or, on resume, the
ones the scan saved re-applied), then for every frame not yet recorded: obeys pause/cancel,
moves, settles and captures at the angle the turntable stepped to, and hands the frame to
the capture pipeline (scans/pipeline.py), whose thread records it (Capture row, session
counters, progress in one commit; a line of metadata/scans/<id>.frames.jsonl) while the rig
moves on; a frame counts only once recorded, and pause, cancel, stop and failures wait for
the frames taken. The light goes off and the rig is closed whatever happens. Resuming runs
the same job again: recorded frames are skipped, so each frame is recorded exactly once, at
its true angle.

The end: the final metadata (metadata/scans/<id>.json, the frames log folded in), the
session record and (for a completed scan) the export ZIP are written while the scan still
reads 'running', so deleting or merging its session is refused until they are on disk; only
then does the scan take its final status.

This module is the entry point (what RQ calls, and the stop request the worker sets); the
run itself is scans/run.py (ScanRun) and its frame steps scans/frames.py.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from scanner_app.platform.extensions import db
from scanner_app.platform.queues import SCAN_JOB, job_app_context, on_horse_killed
from scanner_app.sessions import record as session_records

log = logging.getLogger("scanner.scan_job")

# A warm shutdown of the worker (jobs/worker.py) asks a running scan to stop before its next
# frame and leave it `interrupted`, ready to resume. Two ways in: the SIGTERM the worker
# forwards sets STOP_REQUESTED, and the flag file the worker writes first (`stop_flag`, set
# in the work-horse). The file is what makes it reliable: a signal that arrives before the
# work-horse has installed its handler, or while the worker has no work-horse yet, is lost.
STOP_REQUESTED = threading.Event()
stop_flag: Path | None = None
LOCK_WAIT_SECONDS = 20.0


def stop_requested() -> bool:
    """Whether the worker running this job is shutting down."""
    if not STOP_REQUESTED.is_set() and stop_flag is not None and stop_flag.exists():
        STOP_REQUESTED.set()
    return STOP_REQUESTED.is_set()


def run_scan(scan_id: int) -> str:
    """Run (or continue) scan `scan_id`; returns its final status."""
    # Imported here, in the work-horse: the run brings numpy and OpenCV (about 35 MB), which
    # the scan worker (it imports this module for STOP_REQUESTED) needs only while it scans.
    from scanner_app.scans.run import ScanRun

    with job_app_context():
        try:
            with session_records.batched():  # session.json once, at the end of the run
                return ScanRun(scan_id, should_stop=stop_requested,
                               lock_wait=LOCK_WAIT_SECONDS).run()
        finally:
            db.session.remove()


@on_horse_killed(SCAN_JOB)
def scan_horse_killed(job: Any, how: str) -> None:
    """The worker's clean-up when this job's process was killed: the scan reads `interrupted`
    at once (resumable from its next frame). The worker switched the rig off already."""
    from scanner_app.scans.recovery import mark_interrupted

    if job.args:
        mark_interrupted(int(job.args[0]), job.id, f"The worker process running the scan {how}.")
