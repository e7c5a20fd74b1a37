"""WSGI entry point for other servers (`flask --app wsgi ...`, any WSGI server)."""

from scanner_app import create_app
from scanner_app.scans.service import reconcile_at_startup

app = create_app()
reconcile_at_startup(app)  # scans left 'running' by a worker that died
