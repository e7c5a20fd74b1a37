"""Database models. Field names follow the public contract (shared/CONTRACT.md)."""

from scanner_app.models.auth import ApiKey, FirstRun, User
from scanner_app.models.capture import Capture
from scanner_app.models.profile import ProfileRow, StationSetting
from scanner_app.models.reconstruction import Reconstruction
from scanner_app.models.scan import SCAN_ACTIVE_STATUSES, Scan
from scanner_app.models.session import ScanSession, StationState
from scanner_app.models.statuses import (
    RECONSTRUCTION_ACTIVE,
    SCAN_ACTIVE,
    SCAN_UNDER_WAY,
    ReconstructionStatus,
    ScanStatus,
    SessionStatus,
    UploadStatus,
)
from scanner_app.models.transitions import transition, update_while
from scanner_app.models.upload import Upload

__all__ = [
    "ApiKey",
    "Capture",
    "FirstRun",
    "ProfileRow",
    "RECONSTRUCTION_ACTIVE",
    "SCAN_ACTIVE",
    "SCAN_ACTIVE_STATUSES",
    "Reconstruction",
    "ReconstructionStatus",
    "SCAN_UNDER_WAY",
    "Scan",
    "ScanSession",
    "ScanStatus",
    "SessionStatus",
    "StationSetting",
    "StationState",
    "Upload",
    "UploadStatus",
    "User",
    "transition",
    "update_while",
]
