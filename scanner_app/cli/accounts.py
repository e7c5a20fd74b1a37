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


def _ready() -> None:
    from scanner_app.station.health import require_migrated

    try:
        require_migrated()
    except StationError as exc:
        raise click.ClickException(exc.message) from None


@apikey_cli.command("list")
@with_appcontext
def list_keys() -> None:
    """Name, id, created and last used of every key (never the key: only its hash is kept)."""
    from scanner_app.accounts.service import list_api_keys

    _ready()
    keys = list_api_keys()
    if not keys:
        click.echo("No API keys. Create one with 'scanner apikey create NAME'.")
        return
    rows = [(str(k.id), k.name, _when(k.created_at), _when(k.last_used_at) or "never")
            for k in keys]
    header = ("ID", "NAME", "CREATED (UTC)", "LAST USED (UTC)")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                   .rstrip())


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else ""


@apikey_cli.command("revoke")
@click.argument("name_or_id")
@with_appcontext
def revoke_key(name_or_id: str) -> None:
    """Revoke the key with this id, or the one key with this name."""
    from scanner_app.accounts.service import revoke_api_key

    _ready()
    try:
        key = revoke_api_key(name_or_id)
    except StationError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Revoked API key '{key.name}' (id {key.id}); scripts using it now get 401.")
