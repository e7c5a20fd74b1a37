"""The `scanner` command: a Flask CLI group, so `flask --app wsgi ...` works too.

Lean start (issue 15): importing this package loads click only. `scanner run` (the supervisor,
which lives as long as the station) is dispatched by `main()` straight to its command without
Flask; the Flask group `cli` is built on first use, and the `db` commands load Flask-Migrate
and alembic only when one of them runs.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, Any

import click

from scanner_app.runtime.zygote import PAGELESS_COMMANDS

if TYPE_CHECKING:
    from flask import Flask

# Commands that need no app in their own process, run by main() without building the Flask
# group: the supervisor, and the gunicorn master (its worker builds the app after the fork).
LEAN_COMMANDS = {"run": "scanner_app.cli.run:run", "web": "scanner_app.cli.web:web"}


def _load(spec: str) -> Any:
    module, attr = spec.split(":")
    return getattr(importlib.import_module(module), attr)


class LazyGroup(click.Group):
    """A command group imported when it is used (`scanner db ...`: alembic is heavy)."""

    def __init__(self, name: str, spec: str, help: str) -> None:  # noqa: A002 - click's name
        super().__init__(name, help=help)
        self.spec = spec

    def _real(self) -> click.Group:
        return _load(self.spec)

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        # From here on the real group parses, runs its own callback and its commands.
        return self._real().make_context(info_name, args, parent=parent, **extra)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._real().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._real().get_command(ctx, cmd_name)


# Commands whose app serves no pages: no RQ dashboard in their processes (and, forked by
# `scanner run`, the app its supervisor prepared: runtime/zygote.py).
NO_PAGES = PAGELESS_COMMANDS


def _create_app() -> Flask:
    from scanner_app import create_app
    from scanner_app.config import ConfigError

    ctx = click.get_current_context(silent=True)
    pageless = ctx is not None and ctx.info_name in NO_PAGES
    if pageless:
        from scanner_app.runtime.zygote import pageless_app

        prepared = pageless_app()  # a part forked by `scanner run`: its parent's app
        if prepared is not None:
            return prepared
    try:
        return create_app(overrides={"SCANNER_RQ_DASHBOARD": False} if pageless else None)
    except ConfigError as exc:  # a sentence for the person, not a traceback
        raise click.ClickException(str(exc)) from None


def _build_cli() -> click.Group:
    from flask.cli import FlaskGroup

    from scanner_app.cli.accounts import apikey_cli, user_cli
    from scanner_app.cli.button import button
    from scanner_app.cli.doctor import doctor
    from scanner_app.cli.hal import hal_cli
    from scanner_app.cli.run import run
    from scanner_app.cli.web import web
    from scanner_app.cli.worker import worker

    class StationGroup(FlaskGroup):
        """FlaskGroup, except that the station's own commands are found without loading
        the `flask.commands` plugins first: Flask-Limiter's imports rich, about 65 ms and
        a few MB in every worker and the button daemon (bench footprint). Any other name
        (a plugin's, the app's) is looked up as FlaskGroup does."""

        def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
            return self.commands.get(name) or super().get_command(ctx, name)

    group = StationGroup(
        name="cli", create_app=_create_app, add_default_commands=False,
        help="Scanning station: web UI, scan worker, start button and maintenance.")
    db_cli = LazyGroup("db", "flask_migrate.cli:db", "Perform database migrations.")
    for command in (db_cli, user_cli, apikey_cli, hal_cli, doctor, run, web, worker, button):
        group.add_command(command)
    return group


_cli: click.Group | None = None


def __getattr__(name: str) -> Any:
    """`cli`, the Flask group, built on first use (PEP 562)."""
    global _cli
    if name == "cli":
        if _cli is None:
            _cli = _build_cli()
        return _cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _load_dotenv() -> None:
    """What FlaskGroup does before any command: .env, then .flaskenv (found from the current
    directory up), never overriding a variable already set; FLASK_SKIP_DOTENV=1 skips it."""
    if os.environ.get("FLASK_SKIP_DOTENV", "").lower() in ("1", "true", "yes"):
        return
    try:
        import dotenv
    except ImportError:
        return
    for name in (".env", ".flaskenv"):
        path = dotenv.find_dotenv(name, usecwd=True)
        if path:
            dotenv.load_dotenv(path, encoding="utf-8")


def main() -> None:
    args = sys.argv[1:]
    if args and args[0] in LEAN_COMMANDS:
        _load_dotenv()  # as the Flask group would have, so every part sees the same settings
        _load(LEAN_COMMANDS[args[0]]).main(args=args[1:], prog_name=f"scanner {args[0]}")
        return
    __getattr__("cli")(prog_name="scanner")


def register_app_commands(app: Flask) -> None:
    """Used by the app factory so `flask --app wsgi <command>` sees the same commands.
    Flask keeps `run` for its development server there, so the station's all-in-one
    `run` is also offered as `flask --app wsgi station`."""
    cli = __getattr__("cli")
    for name, command in cli.commands.items():
        if name not in app.cli.commands:
            app.cli.add_command(command, name)
    app.cli.add_command(cli.commands["run"], "station")
