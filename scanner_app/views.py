"""Where every blueprint is registered: one line each."""

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from scanner_app.api.exports import bp as api_exports
    from scanner_app.api.scans import bp as api_scans
    from scanner_app.api.sessions import bp as api_sessions
    from scanner_app.api.station import bp as api_station
    from scanner_app.api.uploads import bp as api_uploads
    from scanner_app.web.auth import bp as web_auth
    from scanner_app.web.dashboard import init_rq_dashboard
    from scanner_app.web.files import bp as web_files
    from scanner_app.web.health import bp as web_health
    from scanner_app.web.pages import bp as web_pages
    from scanner_app.web.scans import bp as web_scans
    from scanner_app.web.sessions import bp as web_sessions
    from scanner_app.web.uploads import bp as web_uploads

    for blueprint in (
        api_sessions, api_scans, api_uploads, api_station, web_auth, web_health, web_pages,
        web_scans, web_sessions, web_uploads, web_files,
    ):
        app.register_blueprint(blueprint)
    app.register_blueprint(api_exports)
    init_rq_dashboard(app)
