"""Where every blueprint is registered: one line each."""

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from scanner_app.accounts.views import bp as web_auth
    from scanner_app.captures.api import bp as api_captures
    from scanner_app.captures.grid import bp as web_captures
    from scanner_app.captures.views import bp as web_files
    from scanner_app.scans.api import bp as api_scans
    from scanner_app.scans.views import bp as web_scans
    from scanner_app.scans.views import session_bp as web_session_scans
    from scanner_app.sessions.api import bp as api_sessions
    from scanner_app.sessions.downloads import bp as api_exports
    from scanner_app.sessions.views import bp as web_sessions
    from scanner_app.station.api import bp as api_station
    from scanner_app.station.api_docs import bp as api_docs
    from scanner_app.station.calibration import bp as web_calibration
    from scanner_app.station.dashboard import bp as web_pages
    from scanner_app.station.healthz import bp as web_health
    from scanner_app.station.rq_dashboard import init_rq_dashboard
    from scanner_app.uploads.api import bp as api_uploads
    from scanner_app.uploads.views import bp as web_uploads

    for blueprint in (
        api_sessions, api_captures, api_scans, api_uploads, api_station, api_docs,
        web_auth, web_health, web_pages, web_scans, web_session_scans, web_sessions, web_uploads,
        web_files, web_captures, web_calibration,
    ):
        app.register_blueprint(blueprint)
    app.register_blueprint(api_exports)
    from scanner_app.station.settings_api import bp as api_profiles
    from scanner_app.station.settings_views import bp as web_settings
    from scanner_app.station.station_page import bp as web_station

    app.register_blueprint(api_profiles)
    app.register_blueprint(web_settings)
    app.register_blueprint(web_station)
    from scanner_app.rig.api import bp as api_rig
    from scanner_app.rig.views import bp as web_rig

    app.register_blueprint(api_rig)
    app.register_blueprint(web_rig)
    from scanner_app.reconstruction.api import bp as api_reconstruction
    from scanner_app.reconstruction.views import bp as web_reconstruction

    app.register_blueprint(api_reconstruction)
    app.register_blueprint(web_reconstruction)
    init_rq_dashboard(app)
