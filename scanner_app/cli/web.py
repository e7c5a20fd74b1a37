"""`scanner web`: serve the web UI and API (waitress: pure Python, streams big uploads to a
temp file instead of memory, and runs the same on a Pi and a laptop)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command("web", help="Serve the web UI and API.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@with_appcontext
def web(host: str, port: int, threads: int) -> None:
    from waitress import serve

    app = current_app._get_current_object()
    click.echo(f"Scanning station web UI on http://{host}:{port}/")
    try:
        serve(app, host=host, port=port, threads=threads, ident="scanner",
              max_request_body_size=app.config["MAX_CONTENT_LENGTH"])
    except OSError as exc:
        raise click.ClickException(
            f"Cannot serve on {host}:{port} ({exc.strerror or exc}). Is the station already "
            "running? Stop it, or pick another port with --port."
        ) from None
