"""A reconstruction job run by a processing worker on another computer: the same pipeline as
reconstruction/job.py, with the station reached only over HTTP (station_link.py). It claims
the row, downloads the scan's inputs into its own data dir, reports stage and percent (and a
heartbeat every few seconds, so the station marks it interrupted if this machine dies),
uploads the outputs and says how it ended. A report the station refuses (the row was
cancelled, deleted, or marked interrupted) stops it; its work folder is removed either way.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import zipfile
from pathlib import Path, PurePosixPath

from scanner_app.reconstruction.hull import HullError
from scanner_app.reconstruction.inputs import InputError, scan_frames
from scanner_app.reconstruction.pipeline import Cancelled, reconstruct
from scanner_app.reconstruction.sfm import RegistrationError
from scanner_app.reconstruction.station_link import (
    StationLink,
    StationRefused,
    StationUnreachable,
)

log = logging.getLogger("scanner.reconstruction")

HEARTBEAT_SECONDS = 2.0
REPORT_EVERY_SECONDS = 0.5


class _RemoteHeartbeat(threading.Thread):
    """Reports every HEARTBEAT_SECONDS; sets `gone` once the station refuses (stop)."""

    def __init__(self, link: StationLink, rid: int):
        super().__init__(name=f"reconstruction-{rid}-heartbeat", daemon=True)
        self.link, self.rid = link, rid
        self.gone = threading.Event()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(HEARTBEAT_SECONDS):
            try:
                self.link.progress(self.rid)
            except StationRefused:
                self.gone.set()
                return
            except StationUnreachable as exc:  # passing outage: the next beat may do
                log.warning("Reconstruction %s: heartbeat not delivered: %s", self.rid, exc)

    def stop(self) -> None:
        self._stop_event.set()


def _extract(archive_path: Path, into: Path) -> None:
    """The inputs ZIP, refusing any name that would land outside `into`."""
    with zipfile.ZipFile(archive_path) as archive:
        for info in archive.infolist():
            name = PurePosixPath(info.filename)
            if name.is_absolute() or ".." in name.parts or not name.parts:
                raise InputError(f"The station sent an input named {info.filename!r}, which "
                                 "this worker refuses. Update the station and the worker.")
        archive.extractall(into)


def run_remote(rid: int, link: StationLink, data_dir: Path, use_colmap: bool | None) -> str:
    """Build reconstruction `rid` for the station behind `link`; its final status."""
    try:
        link.claim(rid)
    except StationRefused as exc:
        log.info("Reconstruction %s not taken: %s", rid, exc)
        return "not claimed"
    log.info("Reconstruction %s claimed from %s", rid, link.url)
    work = data_dir / "processing" / f"remote-{rid}"
    heartbeat = _RemoteHeartbeat(link, rid)
    heartbeat.start()
    last = [0.0]

    def check() -> None:
        if heartbeat.gone.is_set():
            raise Cancelled

    def report(stage: str, percent: float, eta: int | None) -> None:
        check()
        now = time.monotonic()
        if now - last[0] < REPORT_EVERY_SECONDS and percent < 100:
            return
        last[0] = now
        try:
            link.progress(rid, stage=stage[:40], percent=max(0.0, min(100.0, percent)),
                          eta_seconds=eta if eta is None else max(0, int(eta)))
        except StationRefused:
            heartbeat.gone.set()
            raise Cancelled from None
        except StationUnreachable as exc:
            log.warning("Reconstruction %s: progress not delivered: %s", rid, exc)

    try:
        shutil.rmtree(work, ignore_errors=True)
        session = work / "session"
        session.mkdir(parents=True)
        report("loading", 0.0, None)
        link.download_inputs(rid, work / "inputs.zip")
        _extract(work / "inputs.zip", session)
        metadata = sorted((session / "metadata" / "scans").glob("*.json"))
        if not metadata:
            raise InputError("The station sent no scan metadata, so the frames' poses are "
                             "unknown: take the scan again.")
        frames, facts = scan_frames(session, metadata[0])
        built = work / "out"
        built.mkdir()
        metrics = reconstruct(frames, built, work, report=report, cancel=check, facts=facts,
                              use_colmap=use_colmap)
        check()
        files = [p.relative_to(built).as_posix() for p in sorted(built.rglob("*"))
                 if p.is_file()]
        report("uploading", 99.0, None)
        for name in files:
            check()
            link.upload(rid, name, built / name)
        outputs = [n for n in metrics.get("outputs", files) if n in files]
        link.finish(rid, {"status": "completed", "metrics": metrics, "outputs": outputs})
        log.info("Reconstruction %s completed and sent to the station", rid)
        return "completed"
    except (Cancelled, StationRefused):
        log.info("Reconstruction %s stopped: the station cancelled it or no longer has it",
                 rid)
        return "cancelled"
    except (InputError, HullError, RegistrationError) as exc:
        return _fail(link, rid, str(exc))
    except StationUnreachable as exc:
        log.error("Reconstruction %s abandoned: %s", rid, exc)
        return "abandoned"
    except Exception as exc:  # noqa: BLE001 - the row must end, with a sentence
        log.exception("Reconstruction %s failed", rid)
        return _fail(link, rid, f"Building the model failed unexpectedly on the processing "
                                f"worker ({type(exc).__name__}). Try again; if it fails again, "
                                "look at that worker's log.")
    finally:
        heartbeat.stop()
        shutil.rmtree(work, ignore_errors=True)


def _fail(link: StationLink, rid: int, sentence: str) -> str:
    try:
        link.finish(rid, {"status": "failed", "error": sentence})
    except (StationRefused, StationUnreachable) as exc:
        log.warning("Reconstruction %s: could not report its failure: %s", rid, exc)
        return "cancelled"
    log.warning("Reconstruction %s failed: %s", rid, sentence)
    return "failed"
