"""WSGI entry point: `waitress-serve --call wsgi:create_app`, `flask --app wsgi ...`."""

from scanner_app import create_app

app = create_app()
