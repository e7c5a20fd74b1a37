"""`scanner run`: the whole station in one command (see scanner_app/runtime/supervisor.py)."""

from __future__ import annotations

import sys

import click

from scanner_app.config import ConfigError, load_settings
from scanner_app.runtime.redis_server import PrivateRedisError


@click.command("run", help="Migrate the database, then start everything: web, scan worker, "
                           "uploads worker and button daemon (and a private Redis when "
                           "SCANNER_REDIS_URL is unset), restarting a part that dies.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def run(host: str, port: int) -> None:
    from scanner_app.runtime.supervisor import Supervisor

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        code = Supervisor(settings, host=host, port=port).run()
    except PrivateRedisError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(code)
