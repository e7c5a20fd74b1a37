"""The RQ dashboard (rq-dashboard 0.9) at /rq/: queues, jobs and workers of this station.

Who may see it is decided by the app-wide login check in scanner_app/auth.py, which runs
before every blueprint's views, this one included. The extra check below is app-level too
and keys on `request.blueprint`: rq_dashboard.blueprint is a module-level object shared by
every app built in a process, so hooks must never be added to it (Flask refuses a setup
call on a blueprint after its first registration, which breaks the second app a test suite
builds).

The Redis client is created lazily, so the app starts while Redis is down; the dashboard
then shows its own "Connection Error" page.

Safety (see scanner_app.platform.web.security): the dashboard's actions (delete, requeue,
empty, compact) are POSTs and need the page's CSRF token like every other form; its jQuery
gets the token from static/rq-dashboard-csrf.js, added to its pages here. A dashboard route
that also answers GET would change state on a mere link or <img>, so such routes are refused
on GET. Its pages run one inline script of the dashboard's own plus underscore templates
(compiled with `new Function`) and carry a few style="" attributes, so their CSP allows
exactly those by hash (and eval), and nothing else inline.
"""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urlencode

from flask import Flask, Response, g, request, url_for
from flask_wtf.csrf import csrf_meta_tag
from markupsafe import escape

from scanner_app.config import Settings, settings_of
from scanner_app.platform.errors import error_response

URL_PREFIX = "/rq"
BLUEPRINT_NAME = "rq_dashboard"  # rq_dashboard.blueprint.name

# Inline <script> elements that run (not the dashboard's type="text/template" ones).
_INLINE_SCRIPT = re.compile(
    r"<script(?![^>]*\bsrc=)(?![^>]*type=\"text/template\")[^>]*>(.*?)</script>", re.S)
_STYLE_ATTR = re.compile(r'\sstyle="([^"]*)"')


def dashboard_redis_url(settings: Settings) -> str:
    """The same Redis as scanner_app.platform.queues.redis_connection, as a URL for the dashboard
    (unix://<socket> for the private Redis), with short timeouts so a page never hangs."""
    timeouts = urlencode({"socket_connect_timeout": 2, "socket_timeout": 10})
    if settings.redis_url:
        sep = "&" if "?" in settings.redis_url else "?"
        return f"{settings.redis_url}{sep}{timeouts}"
    return f"unix://{settings.redis_socket}?{timeouts}"


def init_rq_dashboard(app: Flask) -> None:
    """Mount the dashboard, unless the app is made for a process that serves no pages
    (SCANNER_RQ_DASHBOARD False: workers, the button daemon; rq-dashboard is 30 MB)."""
    if app.config.get("SCANNER_RQ_DASHBOARD") is False:
        return
    import rq_dashboard

    settings: Settings = settings_of(app)
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

    @app.before_request
    def _dashboard_changes_state_only_by_post() -> tuple[Response | str, int] | None:
        rule = request.url_rule
        if (request.blueprint == BLUEPRINT_NAME and rule is not None
                and request.method == "GET" and "POST" in (rule.methods or ())):
            return error_response(
                405, "method_not_allowed",
                "This job dashboard action changes the queues: use its button, which sends it "
                "as a form.",
            )
        return None

    @app.after_request
    def _dashboard_page_policy(response: Response) -> Response:
        if request.blueprint == BLUEPRINT_NAME and response.mimetype == "text/html":
            dashboard_page_policy(response)
        return response


def _hashes(sources: list[str]) -> str:
    return " ".join(sorted({
        "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"
        for text in sources}))


def scripts_policy(html: str) -> str:
    """A CSP for one dashboard page: its own inline scripts by hash, eval for underscore's
    templates, its own style="" attributes by hash, and otherwise only the station's own
    files."""
    scripts, styles = _hashes(_INLINE_SCRIPT.findall(html)), _hashes(_STYLE_ATTR.findall(html))
    style_src = f"'self' 'unsafe-hashes' {styles}" if styles else "'self'"
    return (f"default-src 'self'; script-src 'self' 'unsafe-eval' {scripts}; "
            f"style-src {style_src}; img-src 'self'; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")


def dashboard_page_policy(response: Response) -> None:
    """Add the CSRF token and the script that hands it to jQuery, then the page's CSP."""
    if response.direct_passthrough:
        return
    html = response.get_data(as_text=True)
    script = escape(url_for("static", filename="rq-dashboard-csrf.js"))
    html = html.replace("</head>", f"{csrf_meta_tag()}<script src=\"{script}\" defer>"
                        "</script></head>", 1)
    response.set_data(html)
    response.headers["Content-Security-Policy"] = scripts_policy(html)
