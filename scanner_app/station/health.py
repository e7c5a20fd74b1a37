"""What /healthz reports."""

from __future__ import annotations

from sqlalchemy import text

from scanner_app.platform.errors import ServiceUnavailable
from scanner_app.platform.extensions import db


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


def require_migrated() -> None:
    """StationError unless `scanner db upgrade` has created the tables."""
    from sqlalchemy import inspect

    from scanner_app.models import ScanSession
    from scanner_app.platform.errors import StationError

    if not inspect(db.engine).has_table(ScanSession.__tablename__):
        raise StationError("The station's database has no tables yet. Run 'scanner db "
                           "upgrade' first (make run does it for you).", code="not_migrated")
