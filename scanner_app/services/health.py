"""What /healthz reports."""

from __future__ import annotations

from sqlalchemy import text

from scanner_app.errors import ServiceUnavailable
from scanner_app.extensions import db


def check_health() -> dict[str, str]:
    """{"status": "ok", "database": "ok"}, or ServiceUnavailable with a sentence."""
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means the database cannot be used
        db.session.rollback()
        raise ServiceUnavailable(
            "The station cannot reach its database. Check SCANNER_DATABASE_URL and that "
            "the database server is running.", code="database_unreachable") from None
    return {"status": "ok", "database": "ok"}
