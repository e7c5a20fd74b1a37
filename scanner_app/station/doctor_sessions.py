"""The doctor's look at automatic sessions of past days still marked active. The station
completes each day's idle auto session when the next day's is made and when it starts
(sessions/day_end.py); the doctor says when some are left, and `--repair` completes them now.
A session with a scan, upload or model under way is left alone: it completes once idle."""

from __future__ import annotations

from typing import Protocol

from scanner_app.platform.extensions import db
from scanner_app.sessions.resolver import station_today
from scanner_app.sessions.service import complete_past_days, idle_past_days

SHOWN_IDS = 5


class _Report(Protocol):
    repair: bool

    def add(self, severity: str, message: str, repaired: bool = False) -> None: ...


def _ids(ids: list[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:SHOWN_IDS])
    return shown + (f" and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else "")


def _which(ids: list[int]) -> str:
    if len(ids) == 1:
        return f"The automatic session {ids[0]} of a past day"
    return f"{len(ids)} automatic sessions of past days ({_ids(ids)})"


def check_past_auto_sessions(report: _Report) -> None:
    today = station_today()
    if report.repair:
        done = complete_past_days(today)
        if done:
            verb = "was" if len(done) == 1 else "were"
            report.add("warning", f"{_which(done)} {verb} still active with nothing under way "
                                  f"and {verb} completed now. New work for a completed "
                                  "session makes it active again.", repaired=True)
        return
    waiting = idle_past_days(today)
    db.session.commit()  # end the read
    if waiting:
        verb = "is" if len(waiting) == 1 else "are"
        report.add("warning", f"{_which(waiting)} {verb} still active with nothing under way. "
                              "The station completes such sessions when the next day's "
                              "session is made and when it starts; --repair completes them "
                              "now.")
