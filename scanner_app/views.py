"""Where every blueprint is registered: one line each."""

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from scanner_app.api.scans import bp as api_scans
    from scanner_app.api.sessions import bp as api_sessions
    from scanner_app.api.station import bp as api_station
    from scanner_app.api.uploads import bp as api_uploads
    from scanner_app.web.auth import bp as web_auth
    from scanner_app.web.dashboard import init_rq_dashboard
    from scanner_app.web.health import bp as web_health
    from scanner_app.web.pages import bp as web_pages

    for blueprint in (
        api_sessions, api_scans, api_uploads, api_station, web_auth, web_health, web_pages
    ):
        app.register_blueprint(blueprint)
    init_rq_dashboard(app)
