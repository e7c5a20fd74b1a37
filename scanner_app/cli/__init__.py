"""The `scanner` command: a Flask CLI group, so `flask --app wsgi ...` works too."""

from __future__ import annotations

import click
from flask.cli import FlaskGroup
from flask_migrate.cli import db as db_cli


def _create_app():
    from scanner_app import create_app
    from scanner_app.config import ConfigError

    try:
        return create_app()
    except ConfigError as exc:  # a sentence for the person, not a traceback
        raise click.ClickException(str(exc)) from None


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False,
             help="Scanning station: web UI, scan worker, start button and maintenance.")
def cli() -> None:
    pass


def _register(group: click.Group) -> None:
    from scanner_app.cli.accounts import apikey_cli, user_cli
    from scanner_app.cli.button import button
    from scanner_app.cli.doctor import doctor
    from scanner_app.cli.hal import hal_cli
    from scanner_app.cli.run import run
    from scanner_app.cli.web import web
    from scanner_app.cli.worker import worker

    for command in (db_cli, user_cli, apikey_cli, hal_cli, doctor, run, web, worker, button):
        group.add_command(command)


_register(cli)


def main() -> None:
    cli(prog_name="scanner")


def register_app_commands(app) -> None:
    """Used by the app factory so `flask --app wsgi <command>` sees the same commands.
    Flask keeps `run` for its development server there, so the station's all-in-one
    `run` is also offered as `flask --app wsgi station`."""
    for name, command in cli.commands.items():
        if name not in app.cli.commands:
            app.cli.add_command(command, name)
    app.cli.add_command(cli.commands["run"], "station")
