"""Who may use the station: a browser login (Flask-Login) or an X-Api-Key header.

Anonymous API requests get 401 with the error body; anonymous page requests are sent to the
login page. The check is app-wide (before_request), so every blueprint, the RQ dashboard
included, is covered without each view remembering to ask.

A login cookie carries "<user id>:<session token>". The token lives in the users table and is
replaced on logout, so a copy of the cookie taken before logout no longer signs anyone in.
Login attempts are throttled with Flask-Limiter (see views.py) in memory: the station serves
with one gunicorn worker process, so one process sees every attempt; counts restart with it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple

from flask import Flask, g, redirect, request, session, url_for
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import AnonymousUserMixin, LoginManager, UserMixin, current_user
from sqlalchemy import bindparam, select, update

from scanner_app.models import ApiKey, User
from scanner_app.platform.clock import utcnow
from scanner_app.platform.errors import StationError, error_response
from scanner_app.platform.extensions import db
from scanner_app.platform.web.cookie_session import init_cookie_session
from scanner_app.platform.web.htmx import is_htmx
from scanner_app.platform.web.response_cache import StampedCache
from scanner_app.sessions.service import kept_under_stamp

# How stale last_used_at may get: writing it on every request would make each progress poll
# a database write, queued behind long write transactions on SQLite.
LAST_USED_RESOLUTION = timedelta(minutes=5)

# Endpoints anyone may reach: the login and first-run pages, static files, the health check.
PUBLIC_ENDPOINTS = {"auth.login", "auth.setup", "static", "health.healthz"}

login_manager = LoginManager()
limiter = Limiter(key_func=get_remote_address, storage_uri="memory://",
                  headers_enabled=True, default_limits=[])
# The only endpoints with limits (accounts/views.py). The limiter's hooks run for the auth
# blueprint alone (init_auth), and within it every other endpoint is filtered out.
THROTTLED_ENDPOINTS = frozenset({"auth.login"})


@limiter.request_filter
def _not_throttled() -> bool:
    return request.endpoint not in THROTTLED_ENDPOINTS


class Forbidden(StationError):
    status, code = 403, "forbidden"


class Login(NamedTuple):
    """What a request needs of a User row, kept per process (see _load_user)."""

    id: int
    name: str
    is_admin: bool
    session_token: str


class SignedIn(UserMixin):
    """The Flask-Login view of a User row: its id for the cookie includes the session token."""

    def __init__(self, user: User | Login) -> None:
        self.id = user.id
        self.name = user.name
        self.is_admin = bool(user.is_admin)
        self.session_token = user.session_token

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"


class Anonymous(AnonymousUserMixin):
    is_admin = False
    name = None


@login_manager.user_loader
def _load_user(cookie_id: str) -> SignedIn | None:
    user_id, _, token = (cookie_id or "").partition(":")
    if not user_id.isascii() or not user_id.isdigit() or not token or len(user_id) > 10:
        return None
    user = kept_under_stamp(LOGINS, ("login", int(user_id)), lambda: _login_row(int(user_id)))
    if user is None or not hmac.compare_digest(user.session_token.encode(), token.encode()):
        return None
    return SignedIn(user)


# Who a login cookie or an API key is, kept per process under the stamp that every commit
# writing users or api_keys changes (sessions/totals.py): a request that finds it reads one
# small file instead of querying, and a logout, a deleted login or a revoked key, in any
# process, is seen by the very next request. Unknown ids and keys are never kept.
LOGINS: StampedCache[Login] = StampedCache(size=64)
KEYS: StampedCache[tuple[int, datetime | None]] = StampedCache(size=64)
_LOGIN_BY_ID = select(User.id, User.name, User.is_admin, User.session_token).where(
    User.id == bindparam("user_id"))


def _login_row(user_id: int) -> Login | None:
    row = db.session.connection().execute(_LOGIN_BY_ID, {"user_id": user_id}).first()
    return None if row is None else Login(row.id, row.name, bool(row.is_admin),
                                          row.session_token)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_api_key() -> str:
    return "sk_" + secrets.token_urlsafe(32)


def user_for_api_key(key: str) -> ApiKey | None:
    api_key = db.session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
    if api_key is not None:
        _note_use(api_key.id, api_key.last_used_at)
    return api_key


def _note_use(key_id: int, last_used_at) -> None:
    now = utcnow()
    if last_used_at is None or now - last_used_at > LAST_USED_RESOLUTION:
        db.session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
        db.session.commit()


# id and last use of a key by its hash: a plain row, not an ORM object, on every API request.
_KEY_BY_HASH = select(ApiKey.id, ApiKey.last_used_at).where(
    ApiKey.key_hash == bindparam("key_hash"))


def _key_row(key_hash: str) -> tuple[int, datetime | None] | None:
    row = db.session.connection().execute(_KEY_BY_HASH, {"key_hash": key_hash}).first()
    return None if row is None else (row.id, row.last_used_at)


def api_key_id(key: str) -> int | None:
    """The id of the API key `key`, or None; notes its use (at most every few minutes)."""
    key_hash = hash_key(key)
    row = kept_under_stamp(KEYS, ("api-key", key_hash), lambda: _key_row(key_hash))
    if row is None:
        return None
    _note_use(*row)  # its write changes the stamp: the next request reads the new time
    return row[0]


def signed_in_user() -> SignedIn | None:
    """The person signed in with a browser login, or None (API keys are not people)."""
    return current_user if current_user.is_authenticated else None


def require_admin() -> SignedIn:
    """User and key management is for admins signed in with a browser login."""
    user = signed_in_user()
    if user is None or not user.is_admin:
        raise Forbidden("Only an admin can manage logins and API keys. Ask one to do it, "
                        "or use 'scanner user create' and 'scanner apikey' on the station.")
    return user


def _authenticate() -> bool:
    key = request.headers.get("X-Api-Key")
    if key:
        g.api_key = api_key_id(key)  # the key's id; None for an unknown key
        return g.api_key is not None
    g.user = signed_in_user()
    return g.user is not None


def _only_for_blueprint(app: Flask, blueprint: str, register: Callable[[], None]) -> None:
    """Run `register()`, and move the request hooks it adds app-wide to `blueprint` alone.
    For Flask-Limiter: its hooks cost more per request than an API answer (issue 15) even
    with every endpoint but the login filtered out, and only the login view is limited."""
    hooks = (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs)
    counts = [len(funcs.get(None, ())) for funcs in hooks]
    register()
    for funcs, count in zip(hooks, counts, strict=True):
        added = funcs.get(None, [])[count:]
        del funcs.get(None, [])[count:]
        funcs.setdefault(blueprint, []).extend(added)


def init_auth(app: Flask) -> None:
    init_cookie_session(app)  # the login cookie's carrier
    login_manager.init_app(app)
    login_manager.anonymous_user = Anonymous
    _only_for_blueprint(app, "auth", lambda: limiter.init_app(app))

    @app.before_request
    def _require_login():
        if "_user_id" in session and not current_user.is_authenticated:
            # A stale cookie (its login was signed out elsewhere): forget all of it.
            session.clear()
        if request.endpoint in PUBLIC_ENDPOINTS:
            return None
        if _authenticate():
            return None
        if request.path.startswith("/api/") or request.headers.get("X-Api-Key"):
            return error_response(
                401, "unauthorized",
                "Sign in, or send a valid key in the X-Api-Key header "
                "(create one with 'scanner apikey create NAME').",
            )
        if is_htmx():
            # A partial cannot follow a redirect into a whole login page; ask htmx to.
            return "", 401, {"HX-Redirect": url_for("auth.login", next=request.full_path)}
        return redirect(url_for("auth.login", next=request.full_path))
