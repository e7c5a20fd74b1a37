"""Logins and API keys."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from scanner_app.accounts.auth import hash_key, new_api_key
from scanner_app.models import ApiKey, User
from scanner_app.platform.errors import BadRequest, Conflict
from scanner_app.platform.extensions import db

_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,80}$")
MIN_PASSWORD = 8


def user_count() -> int:
    return db.session.scalar(select(func.count()).select_from(User))


def create_user(name: str, password: str, is_admin: bool = False) -> User:
    if not _NAME.match(name or ""):
        raise BadRequest("A user name is 1 to 80 letters, digits or . _ - @ (no spaces).")
    if len(password or "") < MIN_PASSWORD:
        raise BadRequest(f"Choose a password of at least {MIN_PASSWORD} characters.")
    if db.session.scalar(select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"There is already a user called '{name}'.")
    user = User(name=name, password_hash=generate_password_hash(password), is_admin=is_admin)
    db.session.add(user)
    db.session.commit()
    return user


def check_login(name: str, password: str) -> User | None:
    user = db.session.scalar(select(User).where(User.name == name))
    if user is None or not check_password_hash(user.password_hash, password or ""):
        return None
    return user


def create_api_key(name: str) -> str:
    """Store the key's hash and return the key itself: it cannot be shown again."""
    if not name or not name.strip():
        raise BadRequest("Name the key after what uses it, e.g. 'turntable-script'.")
    key = new_api_key()
    db.session.add(ApiKey(name=name.strip(), key_hash=hash_key(key)))
    db.session.commit()
    return key
