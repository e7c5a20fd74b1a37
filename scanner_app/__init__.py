"""The scanning station's Flask application factory.

Importing this package loads nothing but the standard library: the processes that never build
the app (`scanner run`'s supervisor, the button daemon) import scanner_app.config and friends
without Flask, SQLAlchemy or alembic coming along (issue 15: lean processes)."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from scanner_app.platform.database import owner_only

if TYPE_CHECKING:
    from flask import Flask

    from scanner_app.config import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _secret_key(data_dir: Path) -> str:
    """A per-station secret kept in the data dir (mode 0600), so logins survive restarts.
    Created with os.link, which refuses an existing name: processes starting together (web,
    worker) all end up reading the one that was linked first."""
    path = data_dir / "secret_key"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(prefix=".secret_key.", dir=data_dir)  # mode 0600
        try:
            os.write(fd, secrets.token_hex(32).encode())
            os.fsync(fd)
            os.close(fd)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    owner_only(path)
    return path.read_text().strip()


def create_app(
    settings: Settings | None = None, overrides: Mapping[str, object] | None = None
) -> Flask:
    """The station's app. Its first call imports most of the station (about 900 modules);
    the cyclic garbage collector is paused meanwhile: it would otherwise run a few hundred
    times over a growing heap of module objects that are never garbage (about 15 % of
    create_app's time, issue 15). The caller's GC state is restored however this ends."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return _build_app(settings, overrides)
    finally:
        if paused:
            gc.enable()


def _build_app(settings: Settings | None, overrides: Mapping[str, object] | None) -> Flask:
    from flask import Flask

    from scanner_app.config import PROJECT_ROOT, load_settings
    from scanner_app.platform.database import engine_options, prepare_data_dir
    from scanner_app.platform.extensions import LazyMigrate, db, htmx
    from scanner_app.platform.url_rules import LazyBuilderRule

    settings = settings or load_settings()
    prepare_data_dir(settings)

    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.url_rule_class = LazyBuilderRule  # before any rule is added (platform/url_rules.py)
    app.config.update(
        SCANNER_SETTINGS=settings,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(settings),
        MAX_CONTENT_LENGTH=settings.max_upload_mb * 1024 * 1024,
        SECRET_KEY=_secret_key(settings.data_dir),
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
    )
    if overrides:
        app.config.update(overrides)

    db.init_app(app)
    LazyMigrate(app, str(MIGRATIONS_DIR))  # alembic loads only if something migrates
    htmx.init_app(app)

    from scanner_app.accounts.auth import init_auth
    from scanner_app.blueprints import register_blueprints
    from scanner_app.platform.errors import register_error_handlers
    from scanner_app.platform.web.converters import init_converters
    from scanner_app.platform.web.security import init_security

    register_error_handlers(app)
    init_converters(app)  # before any route is added: ids are bounded ASCII digits
    init_auth(app)
    init_security(app)  # CSRF after the login check; headers on every response
    register_blueprints(app)

    from scanner_app.cli import register_app_commands

    register_app_commands(app)

    if not logging.getLogger().handlers:
        # CLI processes (web, worker, button) log the station's INFO lines, e.g. the
        # resolver's "reused/created session N"; a host that configured logging keeps its own.
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    return app
