"""The RQ dashboard (rq-dashboard 0.9) at /rq/: queues, jobs and workers of this station.

Who may see it is decided by the app-wide login check in scanner_app/auth.py, which runs
before every blueprint's views, this one included. The extra check below is app-level too
and keys on `request.blueprint`: rq_dashboard.blueprint is a module-level object shared by
every app built in a process, so hooks must never be added to it (Flask refuses a setup
call on a blueprint after its first registration, which breaks the second app a test suite
builds).

The Redis client is created lazily, so the app starts while Redis is down; the dashboard
then shows its own "Connection Error" page.
"""

from __future__ import annotations

from urllib.parse import urlencode

import rq_dashboard
from flask import Flask, Response, g, request

from scanner_app.config import Settings
from scanner_app.platform.errors import error_response

URL_PREFIX = "/rq"
BLUEPRINT_NAME = rq_dashboard.blueprint.name  # "rq_dashboard"


def dashboard_redis_url(settings: Settings) -> str:
    """The same Redis as scanner_app.platform.queues.redis_connection, as a URL for the dashboard
    (unix://<socket> for the private Redis), with short timeouts so a page never hangs."""
    timeouts = urlencode({"socket_connect_timeout": 2, "socket_timeout": 10})
    if settings.redis_url:
        sep = "&" if "?" in settings.redis_url else "?"
        return f"{settings.redis_url}{sep}{timeouts}"
    return f"unix://{settings.redis_socket}?{timeouts}"


def init_rq_dashboard(app: Flask) -> None:
    settings: Settings = app.config["SCANNER_SETTINGS"]
    debug = app.config.get("DEBUG")
    app.config.from_object(rq_dashboard.default_settings)
    app.config["DEBUG"] = debug  # its defaults set DEBUG=False; the app's own choice stands
    app.config["RQ_DASHBOARD_REDIS_URL"] = dashboard_redis_url(settings)
    app.config.setdefault("RQ_DASHBOARD_POLL_INTERVAL", 2500)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=URL_PREFIX)
    rq_dashboard.web.setup_rq_connection(app)

    @app.before_request
    def _dashboard_needs_a_person() -> tuple[Response | str, int] | None:
        # Belt and braces behind scanner_app.accounts.auth: even if the dashboard's endpoints were
        # ever made public there, its queues (job arguments, tracebacks) stay private.
        if request.blueprint != BLUEPRINT_NAME:
            return None
        if g.get("user") is not None or g.get("api_key") is not None:
            return None
        return error_response(
            401, "unauthorized",
            "The job dashboard needs a login or an X-Api-Key header.",
        )
