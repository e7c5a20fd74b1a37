"""Flask extension objects, created unbound and initialised in the application factory."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from htmx_flask import Htmx
from sqlalchemy import MetaData
from sqlalchemy.dialects import postgresql, sqlite

# Stable constraint names so migrations behave the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING))
htmx = Htmx()


class LazyMigrate:
    """Flask-Migrate, loaded (with alembic, about 40 MB) only by a process that migrates.

    Stands in `app.extensions["migrate"]` until something there is asked for (`scanner db
    upgrade`, flask_migrate.upgrade() in tests); then the real Flask-Migrate is initialised
    on the app, replacing it, and answers."""

    def __init__(self, app: Flask, directory: str) -> None:
        self._app, self._directory = app, directory
        app.extensions["migrate"] = self

    def load(self) -> Any:
        from flask_migrate import Migrate

        Migrate().init_app(self._app, db, directory=self._directory)
        return self._app.extensions["migrate"]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.load(), name)


def dialect_insert():
    """INSERT with ON CONFLICT support for the database in use (PostgreSQL or SQLite):
    the database, not a select-then-insert, decides which of racing writers wins."""
    name = db.session.get_bind().dialect.name
    return postgresql.insert if name == "postgresql" else sqlite.insert
