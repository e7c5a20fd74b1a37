"""Database models. Field names follow the public contract (shared/CONTRACT.md)."""

from scanner_app.models.auth import ApiKey, FirstRun, User
from scanner_app.models.capture import Capture
from scanner_app.models.scan import SCAN_ACTIVE_STATUSES, Scan
from scanner_app.models.session import ScanSession, StationState
from scanner_app.models.upload import Upload

__all__ = [
    "ApiKey",
    "Capture",
    "FirstRun",
    "SCAN_ACTIVE_STATUSES",
    "Scan",
    "ScanSession",
    "StationState",
    "Upload",
    "User",
]
