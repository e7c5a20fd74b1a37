"""The station's side of a processing worker on another computer (no shared disk): the
worker claims a queued reconstruction, downloads the scan's inputs, reports stage and
percent (each report is also its heartbeat), uploads each output, then says how it ended.
Every change is a conditional UPDATE of the row (models/transitions.py); a report for a row
that is no longer running (cancelled, interrupted for a stale heartbeat, deleted) is refused
with 409/404, which tells the worker to stop. Uploaded outputs wait in a hidden folder beside
the scan's model folder and replace it in one rename once the worker says it completed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any, BinaryIO

from scanner_app.models import Reconstruction, ReconstructionStatus, transition, update_while
from scanner_app.platform.clock import utcnow
from scanner_app.platform.errors import BadRequest, Conflict, NotFound
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import atomic_open, current_storage
from scanner_app.reconstruction import service

log = logging.getLogger("scanner.reconstruction")

# An output is a file name, or one folder and a file name (colmap/cameras.txt), of the kinds
# the pipeline writes; at most MAX_OUTPUTS of them.
OUTPUT_NAME = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9_-]{0,39}/)?"
                         r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}\.(?:glb|ply|json|txt|bin|obj|mtl|png"
                         r"|jpg)$")
MAX_OUTPUTS = 64
CHUNK = 1024 * 1024
FINAL = {"completed": ReconstructionStatus.COMPLETED, "failed": ReconstructionStatus.FAILED}


def _row(reconstruction_id: int) -> Reconstruction:
    row = db.session.get(Reconstruction, reconstruction_id)
    if row is None:
        raise NotFound(f"There is no reconstruction {reconstruction_id}; it was deleted with "
                       "its scan or session. Stop working on it.", code="no_such_reconstruction")
    return row


def _not_running(row: Reconstruction) -> Conflict:
    db.session.refresh(row)
    return Conflict(f"Reconstruction {row.id} is {row.status}, not running; stop working on "
                    "it.", code="reconstruction_not_running")


def staging_dir(row: Reconstruction) -> Path:
    target = current_storage().reconstruction_dir(row.session_id, row.scan_id)
    return target.with_name(f".{target.name}.{row.id}.remote")


def claim(reconstruction_id: int) -> Reconstruction:
    """queued -> running for a remote worker (409 when another worker took it, or it was
    cancelled meanwhile)."""
    row = _row(reconstruction_id)
    now = utcnow()
    if not transition(Reconstruction, row.id, ReconstructionStatus.RUNNING,
                      from_=ReconstructionStatus.QUEUED, started_at=now, heartbeat_at=now,
                      stage="loading", percent=0.0):
        db.session.rollback()
        raise _not_running(row)
    db.session.commit()
    shutil.rmtree(staging_dir(row), ignore_errors=True)
    db.session.refresh(row)
    log.info("Reconstruction %s claimed by a remote processing worker", row.id)
    return row


def running(reconstruction_id: int) -> Reconstruction:
    """The row, while it is running (after lazy recovery of a stale heartbeat)."""
    row = service.get_reconstruction(reconstruction_id)
    if row.status is not ReconstructionStatus.RUNNING:
        discard_staging(row)  # cancelled or interrupted: what it uploaded goes
        raise _not_running(row)
    return row


def progress(reconstruction_id: int, body: dict[str, Any]) -> Reconstruction:
    """A report (and the heartbeat): stage, percent and ETA while the row is running."""
    row = running(reconstruction_id)
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if "stage" in body:
        stage = body["stage"]
        if not isinstance(stage, str) or not 0 < len(stage) <= 40:
            raise BadRequest("stage must be a short text (1 to 40 characters).")
        values["stage"] = stage
    if "percent" in body:
        percent = body["percent"]
        if isinstance(percent, bool) or not isinstance(percent, int | float) \
                or not 0 <= percent <= 100:
            raise BadRequest("percent must be a number from 0 to 100.")
        values["percent"] = float(percent)
    if "eta_seconds" in body:
        eta = body["eta_seconds"]
        if eta is not None and (isinstance(eta, bool) or not isinstance(eta, int) or eta < 0):
            raise BadRequest("eta_seconds must be a whole number of seconds or null.")
        values["eta_seconds"] = eta
    if not update_while(Reconstruction, row.id, ReconstructionStatus.RUNNING, **values):
        db.session.rollback()
        raise _not_running(row)
    db.session.commit()
    db.session.refresh(row)
    return row


def check_output_name(name: str) -> str:
    if not OUTPUT_NAME.fullmatch(name or ""):
        raise BadRequest(f"{name!r} is not an output name the station keeps: use a name like "
                         "model.glb, report.json or colmap/cameras.txt.", code="bad_output_name")
    return name


def store_output(reconstruction_id: int, name: str, body: BinaryIO) -> int:
    """Write one uploaded output into the staging folder (atomically); its size."""
    check_output_name(name)
    row = running(reconstruction_id)
    staging = staging_dir(row)
    session_dir = current_storage().session_dir(row.session_id)
    if not session_dir.is_dir():
        raise NotFound(f"The session of reconstruction {row.id} is gone; stop working on it.",
                       code="no_such_reconstruction")
    (session_dir / "exports").mkdir(exist_ok=True)
    staging.mkdir(exist_ok=True)
    if len([p for p in staging.rglob("*") if p.is_file()]) >= MAX_OUTPUTS:
        raise BadRequest(f"A reconstruction keeps at most {MAX_OUTPUTS} output files.",
                         code="too_many_outputs")
    path = staging / name
    path.parent.mkdir(exist_ok=True)
    size = 0
    with atomic_open(path) as handle:
        while chunk := body.read(CHUNK):
            size += len(chunk)
            handle.write(chunk)
    update_while(Reconstruction, row.id, ReconstructionStatus.RUNNING, heartbeat_at=utcnow())
    db.session.commit()
    return size


def finish(reconstruction_id: int, body: dict[str, Any]) -> Reconstruction:
    """The worker's last word: `completed` (with metrics and the outputs it uploaded, which
    then replace the scan's model folder) or `failed` (with the sentence for the person)."""
    status = FINAL.get(body.get("status"))
    if status is None:
        raise BadRequest("status must be 'completed' or 'failed'.")
    row = running(reconstruction_id)
    if status is ReconstructionStatus.FAILED:
        error = body.get("error")
        if not isinstance(error, str) or not error.strip():
            raise BadRequest("A failed reconstruction needs an error: the sentence saying what "
                             "to change.")
        discard_staging(row)
        return _end(row, status, error=error[:2000], finished_at=utcnow(), eta_seconds=None)
    metrics, outputs = body.get("metrics") or {}, body.get("outputs")
    if not isinstance(metrics, dict) or not isinstance(outputs, list) \
            or not all(isinstance(n, str) for n in outputs):
        raise BadRequest("A completed reconstruction needs metrics (an object) and outputs "
                         "(the list of the file names it uploaded).")
    staging = staging_dir(row)
    missing = [n for n in outputs if not (staging / check_output_name(n)).is_file()]
    if "model.glb" not in outputs or missing:
        raise Conflict(f"Upload every output before finishing; missing: "
                       f"{', '.join(missing or ['model.glb'])}.", code="outputs_missing")
    target = current_storage().reconstruction_dir(row.session_id, row.scan_id)
    old = target.with_name(f".{target.name}.{row.id}.old")
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)
    ended = _end(row, ReconstructionStatus.COMPLETED, stage="done", percent=100.0,
                 eta_seconds=0, finished_at=utcnow(), outputs=json.dumps(outputs),
                 metrics=json.dumps({**metrics, "outputs": outputs}), error=None)
    return ended


def _end(row: Reconstruction, status: ReconstructionStatus, **values: Any) -> Reconstruction:
    if not transition(Reconstruction, row.id, status, from_=ReconstructionStatus.RUNNING,
                      **values):
        db.session.rollback()
        if status is ReconstructionStatus.COMPLETED:  # cancelled at the last moment
            shutil.rmtree(current_storage().reconstruction_dir(row.session_id, row.scan_id),
                          ignore_errors=True)
        raise _not_running(row)
    db.session.commit()
    db.session.refresh(row)
    log.info("Reconstruction %s %s by a remote processing worker", row.id, status)
    return row


def discard_staging(row: Reconstruction) -> None:
    shutil.rmtree(staging_dir(row), ignore_errors=True)
