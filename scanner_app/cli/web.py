"""`scanner web`: serve the web UI and API with gunicorn (see scanner_app/runtime/web_server.py:
one gthread worker process, the app created in it, request bodies streamed to the app)."""

from __future__ import annotations

import click

from scanner_app.config import ConfigError, load_settings
from scanner_app.runtime.web_server import DEFAULT_THREADS


# No @with_appcontext: the app (and its database engine) is created in the worker process,
# never in this one, so nothing of it crosses the fork.
@click.command("web", help="Serve the web UI and API.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=DEFAULT_THREADS, show_default=True,
              type=click.IntRange(min=1), help="Requests served at the same time.")
@click.option("--no-master", "no_master", is_flag=True,
              help="Serve from this process, without gunicorn's master process (which "
                   "restarts a dead or stuck worker): for a supervisor that restarts it, as "
                   "'scanner run' does. Saves about 25 MB.")
def web(host: str, port: int, threads: int, no_master: bool) -> None:
    from scanner_app.runtime.web_server import bind_listener, serve

    try:
        load_settings()  # a broken configuration is a sentence now, not a worker that dies
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        listener = bind_listener(host, port)
    except OSError as exc:
        raise click.ClickException(
            f"Cannot serve on {host}:{port} ({exc.strerror or exc}). Is the station already "
            "running? Stop it, or pick another port with --port."
        ) from None
    bound_host, bound_port = listener.getsockname()[:2]
    url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    serve(listener, threads=threads, master=not no_master,
          ready_message=f"Scanning station web UI on http://{url_host}:{bound_port}/")
