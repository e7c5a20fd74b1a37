"""Logins and API keys."""

from __future__ import annotations

import re
from functools import lru_cache

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from scanner_app.accounts.auth import hash_key, new_api_key
from scanner_app.models import ApiKey, FirstRun, User
from scanner_app.models.auth import new_token
from scanner_app.platform.errors import BadRequest, Conflict, NotFound
from scanner_app.platform.extensions import db

_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,80}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # hashing a megabyte-long "password" per attempt would be a cheap DoS


def user_count() -> int:
    return db.session.scalar(select(func.count()).select_from(User))


def _new_user(name: str, password: str, is_admin: bool) -> User:
    if not isinstance(name, str) or not _NAME.match(name):
        raise BadRequest("A user name is 1 to 80 letters, digits or . _ - @ (no spaces).")
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise BadRequest(f"Choose a password of at least {MIN_PASSWORD} characters.")
    if len(password) > MAX_PASSWORD or "\x00" in password:
        raise BadRequest(f"Choose a password of at most {MAX_PASSWORD} characters, "
                         "without control characters.")
    return User(name=name, password_hash=generate_password_hash(password), is_admin=is_admin)


def _name_taken(name: str) -> Conflict:
    return Conflict(f"There is already a user called '{name}'.", code="name_in_use")


def create_user(name: str, password: str, is_admin: bool = False) -> User:
    user = _new_user(name, password, is_admin)
    if db.session.scalar(select(User.id).where(User.name == name)) is not None:
        raise _name_taken(name)
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise _name_taken(name) from None
    return user


def create_first_admin(name: str, password: str) -> User:
    """First run: the admin and the single first_run row commit together, so of racing
    /setup requests exactly one wins; the others get a Conflict."""
    user = _new_user(name, password, is_admin=True)
    if user_count() > 0:
        raise Conflict("This station is set up already; sign in instead.", code="set_up")
    db.session.add(FirstRun(id=1))
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("This station is set up already; sign in instead.",
                       code="set_up") from None
    return user


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Same method and cost as real hashes, so an unknown name takes as long as a wrong password.
    return generate_password_hash("not a password of anyone")


def check_login(name: str, password: str) -> User | None:
    password = password if isinstance(password, str) else ""
    user = None
    if isinstance(name, str) and _NAME.match(name):
        user = db.session.scalar(select(User).where(User.name == name))
    if len(password) > MAX_PASSWORD:
        password = ""  # still hashed below, so a long password is no faster than a short one
    stored = user.password_hash if user is not None else _dummy_hash()
    matches = check_password_hash(stored, password)
    return user if user is not None and matches else None


def end_all_logins(user_id: int) -> None:
    """Sign the user out everywhere: every cookie carries the old token."""
    db.session.execute(update(User).where(User.id == user_id).values(session_token=new_token()))
    db.session.commit()


def list_users() -> list[User]:
    return list(db.session.scalars(select(User).order_by(User.name)))


def delete_user(user_id: int, *, acting_user_id: int) -> str:
    """Remove a login (and with it its cookies). The last admin, or yourself, stays."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("There is no such login; reload the page.")
    if user.id == acting_user_id:
        raise Conflict("You cannot delete your own login; ask another admin.",
                       code="own_login")
    if user.is_admin:
        admins = db.session.scalar(select(func.count()).select_from(User)
                                   .where(User.is_admin.is_(True)))
        if admins <= 1:
            raise Conflict("This is the last admin; make another admin first.",
                           code="last_admin")
    name = user.name
    db.session.execute(delete(User).where(User.id == user_id))
    db.session.commit()
    return name


def create_api_key(name: str) -> str:
    """Store the key's hash and return the key itself: it cannot be shown again."""
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("Name the key after what uses it, e.g. 'turntable-script'.")
    name = " ".join(name.split())
    if len(name) > 80 or not name.isprintable():
        raise BadRequest("Keep the key's name to 80 printable characters.")
    key = new_api_key()
    db.session.add(ApiKey(name=name, key_hash=hash_key(key)))
    db.session.commit()
    return key


def list_api_keys() -> list[ApiKey]:
    return list(db.session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def revoke_api_key(name_or_id: str | int) -> ApiKey:
    """Delete the key with this id, or the one key with this name; returns what was removed.
    An id is ASCII digits; a key named with digits only is found by name when no id matches."""
    text = str(name_or_id).strip()
    clauses = [ApiKey.name == text]
    if text.isascii() and text.isdigit() and len(text) <= 10:
        clauses.insert(0, ApiKey.id == int(text))
    keys = list(db.session.scalars(select(ApiKey).where(or_(*clauses))))
    by_id = [key for key in keys if str(key.id) == text]
    chosen = by_id or keys
    if not chosen:
        raise NotFound(f"There is no API key '{text}'; 'scanner apikey list' shows them.")
    if len(chosen) > 1:
        raise Conflict(f"{len(chosen)} keys are named '{text}'; revoke one by its id "
                       "('scanner apikey list' shows them).", code="ambiguous_key")
    db.session.execute(delete(ApiKey).where(ApiKey.id == chosen[0].id))
    db.session.commit()
    return chosen[0]


def revoke_api_key_id(key_id: int) -> ApiKey:
    key = db.session.get(ApiKey, key_id)
    if key is None:
        raise NotFound("There is no such API key; reload the page.")
    db.session.execute(delete(ApiKey).where(ApiKey.id == key_id))
    db.session.commit()
    return key
