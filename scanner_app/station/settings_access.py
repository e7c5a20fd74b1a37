"""Who may change the station's settings: an admin signed in with a browser, or an API key
(keys are made by admins, on the admin page or with 'scanner apikey create')."""

from __future__ import annotations

from flask import g
from flask_login import current_user

from scanner_app.platform.errors import StationError

NOT_ADMIN = ("Only an admin can change scan profiles. Ask an admin to sign in and change it, "
             "or to make you an admin.")


def can_edit_settings() -> bool:
    if g.get("api_key") is not None:
        return True
    return bool(current_user and current_user.is_authenticated
                and getattr(current_user, "is_admin", False))


def require_settings_editor() -> None:
    if not can_edit_settings():
        raise StationError(NOT_ADMIN, code="forbidden", status=403)
