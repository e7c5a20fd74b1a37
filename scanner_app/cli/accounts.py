from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from scanner_app.platform.errors import StationError


@click.group("user", help="Manage logins for the web UI.")
def user_cli() -> None:
    pass


@user_cli.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="May manage everything.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@with_appcontext
def create_user(name: str, admin: bool, password_stdin: bool) -> None:
    from scanner_app.accounts.service import create_user as create
    from scanner_app.station.health import require_migrated

    try:
        require_migrated()
    except StationError as exc:
        raise click.ClickException(exc.message) from None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        create(name, password, is_admin=admin)
    except StationError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Created {'admin ' if admin else ''}login '{name}'.")


@click.group("apikey", help="Manage API keys for scripts (sent as the X-Api-Key header).")
def apikey_cli() -> None:
    pass


@apikey_cli.command("create")
@click.argument("name")
@with_appcontext
def create_key(name: str) -> None:
    from scanner_app.accounts.service import create_api_key
    from scanner_app.station.health import require_migrated

    try:
        require_migrated()
        key = create_api_key(name)
    except StationError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"API key '{name}' created. It is shown only now; store it safely:")
    click.echo(key)
