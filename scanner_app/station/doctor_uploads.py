"""The doctor's look at uploads stuck in 'processing': their worker or work-horse was killed,
the disk filled up during extraction, or their job was lost. The worker queues them again at
start and in its maintenance rounds; the doctor says so, and `--repair` does it now."""

from __future__ import annotations

from typing import Protocol

from redis.exceptions import RedisError
from sqlalchemy import func, select

from scanner_app.config import Settings
from scanner_app.models import Upload, UploadStatus
from scanner_app.platform.extensions import db

SHOWN_IDS = 5


class _Report(Protocol):
    repair: bool

    def add(self, severity: str, message: str, repaired: bool = False) -> None: ...


def _ids(ids: list[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:SHOWN_IDS])
    return shown + (f" and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else "")


def check_stuck_uploads(report: _Report, settings: Settings) -> None:
    from scanner_app.uploads.service import find_stuck_uploads, requeue_stuck_uploads

    try:
        stuck = find_stuck_uploads(settings).ids
    except (RedisError, OSError):
        db.session.rollback()
        waiting = db.session.scalar(select(func.count()).select_from(Upload)
                                    .where(Upload.status == UploadStatus.PROCESSING))
        db.session.commit()
        if waiting:
            report.add("warning", f"{waiting} upload{'s are' if waiting != 1 else ' is'} still "
                                  "marked as processing, and the job queue (Redis) does not "
                                  "answer, so the doctor cannot tell whether a worker is on "
                                  "them. Start the station ('scanner run') and run the doctor "
                                  "again.")
        return
    if not stuck:
        return
    which = (f"Upload {stuck[0]} is" if len(stuck) == 1
             else f"{len(stuck)} uploads ({_ids(stuck)}) are")
    message = (f"{which} marked as processing, but no worker is processing "
               f"{'it' if len(stuck) == 1 else 'them'} (the worker was stopped or killed, or "
               "the disk filled up); the files are kept.")
    if not report.repair:
        report.add("problem", message + " --repair queues them again.")
        return
    try:
        queued = set(requeue_stuck_uploads(settings))
    except (RedisError, OSError):
        db.session.rollback()
        report.add("problem", message + " They could not be queued again because the job "
                                        "queue (Redis) does not answer; start the station and "
                                        "run the doctor again.")
        return
    if queued >= set(stuck):
        report.add("problem", message + " They were queued again; a running worker processes "
                                        "them.", repaired=True)
    else:
        report.add("problem", message + " They were not queued again yet: free some space on "
                                        "the disk, then run the doctor again.")
