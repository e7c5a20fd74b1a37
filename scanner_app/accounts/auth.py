"""Who may use the station: a browser login (Flask session cookie) or an X-Api-Key header.

Anonymous API requests get 401 with the error body; anonymous page requests are sent to the
login page. The check is app-wide (before_request), so every blueprint, the RQ dashboard
included, is covered without each view remembering to ask.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import Flask, g, redirect, request, session, url_for
from sqlalchemy import select, update

from scanner_app.models import ApiKey, User
from scanner_app.platform.clock import utcnow
from scanner_app.platform.errors import error_response
from scanner_app.platform.extensions import db

# How stale last_used_at may get: writing it on every request would make each progress poll
# a database write, queued behind long write transactions on SQLite.
LAST_USED_RESOLUTION = timedelta(minutes=5)

# Endpoints anyone may reach: the login and first-run pages, static files, the health check.
PUBLIC_ENDPOINTS = {"auth.login", "auth.setup", "static", "health.healthz"}


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_api_key() -> str:
    return "sk_" + secrets.token_urlsafe(32)


def user_for_api_key(key: str) -> ApiKey | None:
    api_key = db.session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
    now = utcnow()
    if api_key is not None and (
        api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION
    ):
        db.session.execute(update(ApiKey).where(ApiKey.id == api_key.id)
                           .values(last_used_at=now))
        db.session.commit()
    return api_key


def current_user() -> User | None:
    user_id = session.get("user_id")
    return db.session.get(User, user_id) if user_id else None


def _authenticate() -> bool:
    key = request.headers.get("X-Api-Key")
    if key:
        g.api_key = user_for_api_key(key)
        return g.api_key is not None
    g.user = current_user()
    return g.user is not None


def init_auth(app: Flask) -> None:
    @app.before_request
    def _require_login():
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
        if request.headers.get("HX-Request"):
            # A partial cannot follow a redirect into a whole login page; ask htmx to.
            return "", 401, {"HX-Redirect": url_for("auth.login", next=request.full_path)}
        return redirect(url_for("auth.login", next=request.full_path))
