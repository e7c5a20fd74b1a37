"""`scanner worker`: the RQ worker that runs scans (and owns the rig) and upload jobs."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from scanner_app.platform.queues import ALL_QUEUES, KNOWN_QUEUES


@click.command("worker", help="Run the job worker: scans (hardware queue) and uploads.")
@click.option("--queues", "-q", default=",".join(ALL_QUEUES), show_default=True,
              help="Comma-separated queues to listen on, highest priority first.")
@click.option("--burst", is_flag=True, help="Quit once the queues are empty.")
@click.option("--name", default=None, help="Worker name shown in the RQ dashboard.")
@click.option("--nice", "niceness", type=click.IntRange(0, 19), default=0,
              help="Lower this worker's CPU priority by N (the processing worker: 10).")
@click.option("--wait-for-redis", default=0.0, show_default=True, type=click.FloatRange(0),
              help="Seconds to wait at start for Redis to answer (scanner run: while it "
                   "restarts Redis) before giving up.")
@with_appcontext
def worker(queues: str, burst: bool, name: str | None, niceness: int,
           wait_for_redis: float) -> None:
    import os

    from scanner_app.runtime.worker import WorkerCannotStart, run_worker

    if niceness:
        os.nice(niceness)  # inherited by every job process it forks

    names = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = [q for q in names if q not in KNOWN_QUEUES]
    if not names or unknown:
        raise click.BadParameter(
            f"use one or more of {', '.join(KNOWN_QUEUES)}, separated by commas",
            param_hint="--queues",
        )
    try:
        run_worker(current_app._get_current_object(), names, burst=burst, name=name,
                   wait_for_redis=wait_for_redis)
    except WorkerCannotStart as exc:
        raise click.ClickException(str(exc)) from None
