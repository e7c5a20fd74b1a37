"""The doctor never crashes on what it finds on disk: a path too long to open, a folder it
may not read, a disk error. Each becomes one sentence in the report, and the other checks
still run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from scanner_app.platform.extensions import db

SHOWN_PATH_CHARS = 120


class _Report(Protocol):
    def add(self, severity: str, message: str, repaired: bool = False) -> None: ...


def shown_path(path: str | Path | None) -> str:
    """A path short enough to read in a report line."""
    text = str(path or "")
    if len(text) <= SHOWN_PATH_CHARS:
        return text
    half = SHOWN_PATH_CHARS // 2
    return f"{text[:half]}…{text[-half:]}"


def os_error_words(exc: OSError) -> str:
    """'File name too long' etc., with the path it concerns when there is one."""
    words = exc.strerror or type(exc).__name__
    return f"{words} ({shown_path(exc.filename)})" if exc.filename else words


def guarded(report: _Report, what: str, check: Callable[..., Any], *args: Any) -> None:
    """Run one check; an OSError it meets becomes a finding instead of a traceback."""
    try:
        check(report, *args)
    except OSError as exc:
        db.session.rollback()
        report.add("problem", f"The doctor could not finish {what}: {os_error_words(exc)}. "
                              "Check that the data directory is readable and the storage is "
                              "healthy, then run the doctor again.")


def path_is_file(report: _Report, path: Path) -> bool:
    """path.is_file(); a path that cannot even be checked (a name too long to open, a folder
    it may not enter) is reported as a sentence and counted as present, not missing."""
    try:
        return path.is_file()
    except OSError as exc:
        report.add("problem", f"The file {shown_path(path)} could not be checked: "
                              f"{exc.strerror or exc}. Move or rename it by hand (its name "
                              "may be too long for the station's tools).")
        return True
