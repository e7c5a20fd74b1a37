from __future__ import annotations

from flask import Blueprint, redirect, request, session, url_for
from werkzeug.wrappers import Response

from scanner_app.accounts import service as users
from scanner_app.platform.errors import StationError
from scanner_app.platform.web.render import render

bp = Blueprint("auth", __name__)


def _safe_next() -> str:
    target = request.values.get("next") or ""
    # Only local paths: never bounce a person to another site after login.
    if target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("dashboard.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int]:
    if users.user_count() == 0:
        return redirect(url_for("auth.setup"))
    error = None
    if request.method == "POST":
        user = users.check_login(request.form.get("name", ""), request.form.get("password", ""))
        if user is not None:
            session.clear()
            session["user_id"] = user.id
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
            user = users.create_user(
                request.form.get("name", "").strip(), request.form.get("password", ""),
                is_admin=True,
            )
        except StationError as exc:
            error = exc.message
        else:
            session.clear()
            session["user_id"] = user.id
            return redirect(url_for("dashboard.index"))
    return render("accounts", "setup", error=error), (400 if error else 200)


@bp.post("/logout")
def logout() -> Response:
    session.clear()
    return redirect(url_for("auth.login"))
