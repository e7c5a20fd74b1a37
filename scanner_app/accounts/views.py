"""Sign in, first run, sign out, and the admin page for logins and API keys."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from flask import Blueprint, flash, redirect, request, session, url_for
from flask_login import login_user, logout_user
from werkzeug.wrappers import Response

from scanner_app.accounts import service as users
from scanner_app.accounts.auth import SignedIn, limiter, require_admin, signed_in_user
from scanner_app.platform.errors import StationError
from scanner_app.platform.web.render import render

bp = Blueprint("auth", __name__)

MAX_NEXT = 2000
TOO_MANY = ("Too many failed sign-ins. Wait a few minutes, then try again; an admin can "
            "reset a forgotten password with 'scanner user create' under a new name.")


def is_local_path(target: str) -> bool:
    """Only a path on this station: never //host, /\\host, a scheme, or characters that
    browsers drop or rewrite (tab, newline, backslash), which turn '/\\t/x' into '//x'."""
    if not target.startswith("/") or target.startswith("//") or len(target) > MAX_NEXT:
        return False
    if not target.isascii() or "\\" in target or any(c <= " " or c == "\x7f" for c in target):
        return False
    # Its encoded form must not start like that either: '/%09/x', '/%2F/x', '/%5C/x'.
    second = unquote(target)[1:2]
    if second in ("/", "\\") or (second and second <= " "):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def _safe_next() -> str:
    target = request.values.get("next") or ""
    return target if is_local_path(target) else url_for("dashboard.index")


def _failed(response: Response) -> bool:
    # Only failed attempts count: a person who signs in often is never throttled.
    return response.status_code == 401


def _account_key() -> str:
    return "login-name:" + (request.form.get("name") or "").strip().lower()[:80]


def _sign_in(user) -> None:
    session.clear()
    login_user(SignedIn(user))


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("5 per minute;20 per hour", key_func=_account_key, methods=["POST"],
               deduct_when=_failed, error_message=TOO_MANY)
@limiter.limit("20 per minute;100 per hour", methods=["POST"], deduct_when=_failed,
               error_message=TOO_MANY)
def login() -> Response | tuple[str, int]:
    if users.user_count() == 0:
        return redirect(url_for("auth.setup"))
    error = None
    if request.method == "POST":
        user = users.check_login(request.form.get("name", ""), request.form.get("password", ""))
        if user is not None:
            _sign_in(user)
            return redirect(_safe_next())
        error = "That name and password do not match. Try again."
    return render("accounts", "login", error=error, next=_safe_next()), (
        401 if error else 200
    )


@bp.route("/setup", methods=["GET", "POST"])
def setup() -> Response | tuple[str, int]:
    """First run: the station has no login yet, so the first visitor creates the admin."""
    if users.user_count() > 0:
        return redirect(url_for("auth.login"))
    error = None
    if request.method == "POST":
        try:
            user = users.create_first_admin(request.form.get("name", "").strip(),
                                            request.form.get("password", ""))
        except StationError as exc:
            if exc.status == 409:  # another visitor won the race: this one signs in
                return redirect(url_for("auth.login"))
            error = exc.message
        else:
            _sign_in(user)
            return redirect(url_for("dashboard.index"))
    return render("accounts", "setup", error=error), (400 if error else 200)


@bp.post("/logout")
def logout() -> Response:
    user = signed_in_user()
    if user is not None:
        users.end_all_logins(user.id)
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


def _admin_page(status: int = 200, **context) -> tuple[str, int, dict[str, str]]:
    me = require_admin()
    html = render("accounts", "admin", me=me, users=users.list_users(),
                  keys=users.list_api_keys(), **context)
    # A new key is in this page once: no cache may keep it.
    return html, status, {"Cache-Control": "no-store"}


def _admin_action(action) -> Response | tuple[str, int, dict[str, str]]:
    """Run a form action; show its error on the page, or go back to the page (no resend)."""
    me = require_admin()
    try:
        message = action(me)
    except StationError as exc:
        return _admin_page(exc.status, error=exc.message)
    flash(message)
    return redirect(url_for("auth.admin"), code=303)


@bp.get("/admin")
def admin() -> tuple[str, int, dict[str, str]]:
    return _admin_page()


@bp.post("/admin/keys")
def create_key() -> tuple[str, int, dict[str, str]]:
    require_admin()
    name = request.form.get("name", "")
    try:
        key = users.create_api_key(name)
    except StationError as exc:
        return _admin_page(exc.status, error=exc.message)
    return _admin_page(201, new_key=key, new_key_name=" ".join(name.split()))


@bp.post("/admin/keys/<int:key_id>/revoke")
def revoke_key(key_id: int) -> Response | tuple[str, int, dict[str, str]]:
    return _admin_action(
        lambda _me: f"Revoked the key '{users.revoke_api_key_id(key_id).name}'.")


@bp.post("/admin/users")
def create_user() -> Response | tuple[str, int, dict[str, str]]:
    def action(_me) -> str:
        user = users.create_user(request.form.get("name", "").strip(),
                                 request.form.get("password", ""),
                                 is_admin=request.form.get("is_admin") == "1")
        return f"Created the login '{user.name}'."

    return _admin_action(action)


@bp.post("/admin/users/<int:user_id>/delete")
def delete_user(user_id: int) -> Response | tuple[str, int, dict[str, str]]:
    return _admin_action(
        lambda me: f"Deleted the login '{users.delete_user(user_id, acting_user_id=me.id)}'.")
