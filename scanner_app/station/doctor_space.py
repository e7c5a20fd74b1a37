"""The doctor's look at free space in the data dir, and how it writes sizes."""

from __future__ import annotations

from typing import Protocol

from scanner_app.config import Settings

MB = 1024 * 1024


class _Report(Protocol):
    def add(self, severity: str, message: str, repaired: bool = False) -> None: ...


def mb_text(size: int) -> str:
    """A size as a person reads it: '12 KB', '3.4 MB', '120 MB'."""
    if size < MB:
        return f"{max(1, round(size / 1024)) if size else 0} KB"
    return f"{size / MB:.1f} MB" if size < 10 * MB else f"{round(size / MB)} MB"


def check_free_space(report: _Report, settings: Settings) -> None:
    from scanner_app.platform.disk import estimate_scan_bytes, free_bytes

    free = free_bytes(settings.data_dir)
    reserve = settings.disk_reserve_mb * MB
    if free < reserve:
        report.add("problem", f"Only {mb_text(free)} are free in {settings.data_dir}, less than "
                              f"the reserve of {settings.disk_reserve_mb} MB: new scans are "
                              "refused. Delete old sessions or exports, or use a bigger card or "
                              "disk.")
        return
    from scanner_app.scans import service as scans

    profiles = scans.effective_profiles(settings)  # the settings page's, over the files'
    profile = profiles.get(scans.default_profile_name(settings, profiles))
    if profile is not None:
        one_scan = estimate_scan_bytes(profile, profile.frames)
        if free - one_scan < reserve:
            report.add("warning", f"{mb_text(free)} are free in {settings.data_dir}: not enough "
                                  f"for another '{profile.name}' scan (about {mb_text(one_scan)}) "
                                  f"above the reserve of {settings.disk_reserve_mb} MB.")
            return
    report.add("ok", f"{mb_text(free)} free in {settings.data_dir} (reserve "
                     f"{settings.disk_reserve_mb} MB).")
