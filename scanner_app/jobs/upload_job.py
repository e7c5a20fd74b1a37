"""The uploads job: process the files of one upload request (on the `uploads` queue, never the
hardware queue; it touches no hardware). Each file is processed on its own, so one that makes
processing crash is marked 'failed' (its file kept) and the others still get done."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app, has_app_context

log = logging.getLogger("scanner.uploads")

_worker_app: Flask | None = None


@contextmanager
def job_app_context() -> Iterator[Flask]:
    """The current app inside a request or a worker that pushed one; otherwise an app built
    once per worker process from the environment, in a fresh context per job."""
    global _worker_app
    if has_app_context():
        yield current_app._get_current_object()
        return
    if _worker_app is None:
        from scanner_app import create_app

        _worker_app = create_app()
    with _worker_app.app_context():
        yield _worker_app


def failure_sentence(exc: BaseException) -> str:
    detail = str(exc).strip() or type(exc).__name__
    return (f"Processing stopped with an error ({detail}). The file is kept in the session "
            "folder; upload it again, and report it if this keeps happening.")


TIMEOUT_SENTENCE = ("Processing took longer than the station allows and was stopped. The "
                    "file is kept in the session folder; send fewer or smaller files at once.")
KILLED_SENTENCE = ("The worker processing this upload stopped unexpectedly (for example, out "
                   "of memory). The file is kept in the session folder; try a smaller file.")


def mark_failed(upload_ids: list[int], sentence: str) -> None:
    """Mark uploads still 'processing' as failed with `sentence` (their files are kept).
    Also for the worker, when the process running an uploads job was killed:
    mark_failed(job.args[0], KILLED_SENTENCE) inside an app context."""
    from scanner_app.extensions import db
    from scanner_app.services.upload_recorder import finish

    for upload_id in upload_ids:
        try:
            finish(upload_id, "failed", sentence)
        except Exception:  # noqa: BLE001 - e.g. the database itself is down
            db.session.rollback()
            log.exception("Could not mark upload %s as failed", upload_id)


def process_uploads(upload_ids: list[int]) -> dict[str, int]:
    """RQ entry point. Returns how many uploads ended done / failed."""
    from rq.timeouts import JobTimeoutException

    from scanner_app.extensions import db
    from scanner_app.services.upload_processing import process_upload
    from scanner_app.services.uploads import forget_upload_objects

    summary = {"done": 0, "failed": 0}
    with job_app_context() as app:
        settings = app.config["SCANNER_SETTINGS"]
        for position, upload_id in enumerate(upload_ids):
            try:
                process_upload(upload_id, settings)
                summary["done"] += 1
            except JobTimeoutException:
                db.session.rollback()
                mark_failed(upload_ids[position:], TIMEOUT_SENTENCE)
                raise  # RQ ends the job; the files stay where they are
            except Exception as exc:  # noqa: BLE001 - one bad file must not stop the rest
                log.exception("Processing upload %s failed", upload_id)
                db.session.rollback()
                mark_failed([upload_id], failure_sentence(exc))
                summary["failed"] += 1
            finally:
                forget_upload_objects()  # nothing is kept between uploads
    return summary
