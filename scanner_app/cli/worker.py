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
@click.option("--max-idle", "max_idle", type=click.IntRange(1), default=None, metavar="SECONDS",
              help="Quit (exit code 0) once no job came for this long: scanner run's "
                   "processing worker, started when a model is queued.")
@click.option("--name", default=None, help="Worker name shown in the RQ dashboard.")
@click.option("--nice", "niceness", type=click.IntRange(0, 19), default=0,
              help="Lower this worker's CPU priority by N (the processing worker: 10).")
@click.option("--idle", "idle", is_flag=True,
              help="Run only on CPU time nobody else wants (Linux SCHED_IDLE): the station's "
                   "processing worker, so a reconstruction never slows a scan.")
@click.option("--wait-for-redis", default=0.0, show_default=True, type=click.FloatRange(0),
              help="Seconds to wait at start for Redis to answer (scanner run: while it "
                   "restarts Redis) before giving up.")
@click.option("--station", envvar="SCANNER_STATION_URL", default=None, metavar="URL",
              help="A processing worker on another computer: the station's address (e.g. "
                   "http://scanner.local:5000). Inputs and results go over its HTTP API.")
@click.option("--api-key", envvar="SCANNER_STATION_API_KEY", default=None,
              help="With --station: an API key of the station ('scanner apikey create').")
@with_appcontext
def worker(queues: str, burst: bool, max_idle: int | None, name: str | None, niceness: int,
           idle: bool, wait_for_redis: float, station: str | None, api_key: str | None) -> None:
    import os

    from scanner_app.runtime.worker import WorkerCannotStart, run_worker

    if niceness:
        os.nice(niceness)  # inherited by every job process it forks
    if idle:
        run_when_idle()

    names = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = [q for q in names if q not in KNOWN_QUEUES]
    if not names or unknown:
        raise click.BadParameter(
            f"use one or more of {', '.join(KNOWN_QUEUES)}, separated by commas",
            param_hint="--queues",
        )
    if station:
        _join_station(station, api_key, names)
    try:
        run_worker(current_app._get_current_object(), names, burst=burst, name=name,
                   wait_for_redis=wait_for_redis, max_idle=max_idle)
    except WorkerCannotStart as exc:
        raise click.ClickException(str(exc)) from None


def run_when_idle() -> bool:
    """SCHED_IDLE for this process, inherited by the job processes it forks and their
    threads: nice 10 alone let a reconstruction slow a scan by half (bench reconstruction),
    since the rig's worker sleeps between moves and loses the CPU it wakes up for."""
    import os

    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        return False  # not Linux: nice alone
    return True


def _join_station(station: str, api_key: str | None, names: list[str]) -> None:
    """A remote processing worker: only the processing queue, a key that the station takes,
    and the link in the environment its job processes inherit."""
    import os

    from flask_migrate import upgrade

    from scanner_app.platform.queues import PROCESSING_QUEUE
    from scanner_app.reconstruction.station_link import (
        KEY_ENV,
        URL_ENV,
        StationLink,
        StationUnreachable,
    )

    if names != [PROCESSING_QUEUE]:
        raise click.BadParameter(f"a worker with --station serves only the {PROCESSING_QUEUE} "
                                 f"queue: use --queues {PROCESSING_QUEUE}",
                                 param_hint="--queues")
    if not api_key:
        raise click.BadParameter("give the station's API key with --api-key (or "
                                 "SCANNER_STATION_API_KEY); make one on the station with "
                                 "'scanner apikey create NAME'", param_hint="--api-key")
    if not station.startswith(("http://", "https://")):
        raise click.BadParameter("give the station's address as http://HOST:PORT",
                                 param_hint="--station")
    try:
        StationLink(station, api_key, timeout=10).check()
    except StationUnreachable as exc:
        raise click.ClickException(str(exc)) from None
    os.environ[URL_ENV], os.environ[KEY_ENV] = station, api_key
    upgrade()  # this worker's own small database (its bookkeeping), in its own data dir
    click.echo(f"Processing for the station at {station}", err=True)
