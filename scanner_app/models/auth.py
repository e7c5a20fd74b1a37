from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import CheckConstraint
from sqlalchemy.orm import Mapped, mapped_column

from scanner_app.platform.clock import utcnow
from scanner_app.platform.extensions import db


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(db.String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(db.String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Part of every login cookie; replaced on logout, so copies of old cookies stop working.
    session_token: Mapped[str] = mapped_column(db.String(64), default=lambda: new_token())


def new_token() -> str:
    return secrets.token_hex(32)


class FirstRun(db.Model):
    """At most one row (id = 1): written with the first admin made by /setup, in the same
    transaction, so of racing first-run requests exactly one can commit."""

    __tablename__ = "first_run"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    done_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(db.Model):
    """Only a hash of the key is stored; the key itself is shown once when created."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(db.String(80))
    key_hash: Mapped[str] = mapped_column(db.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
