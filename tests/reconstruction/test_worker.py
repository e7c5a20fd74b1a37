"""A real mock scan, then its model built by a real `scanner worker --queues processing`
process: progress by stage, the model in the scan's folder under exports/, cancel while
running, a killed job read as interrupted and started again, and a deleted session that
takes its running reconstruction with it and leaves no files."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import trimesh

from hal.mock.scene import object_mesh
from scanner_app.reconstruction.surface import as_mesh, surface_distance
from tests.support import wait_until


def _recon(station, rid: int) -> str:
    return f"/api/v1/reconstructions/{rid}"


def _start(station, scan: dict) -> dict:
    return station.post(f"/api/v1/scans/{scan['id']}/reconstruction")["reconstruction"]


def _wait_status(station, rid: int, status: str, timeout: float = 90) -> dict:
    return station.wait(_recon(station, rid), "reconstruction", lambda r: r["status"] == status,
                        f"reconstruction {rid} to be {status}", timeout)


def _work_dir(station, rid: int) -> Path:
    return station.data_dir / "processing" / f"reconstruction-{rid}"


def _model_dir(station, scan: dict) -> Path:
    return (station.data_dir / "sessions" / str(scan["session_id"]) / "exports"
            / f"scan-{scan['id']}-model")


def test_model_is_built_by_the_processing_worker(station, completed_scan, capsys) -> None:
    assert completed_scan["status"] == "completed", completed_scan
    station.start_worker("processing")
    first = _start(station, completed_scan)
    assert first["status"] == "queued" and first["outputs"] == {}
    # One at a time per scan.
    conflict = station.post(f"/api/v1/scans/{completed_scan['id']}/reconstruction", 409)
    assert "Wait for it to finish or cancel it" in conflict["error"]["message"]

    seen: list[tuple[str, float]] = []

    def done():
        r = station.get(_recon(station, first["id"]))["reconstruction"]
        seen.append((r["stage"], r["percent"]))
        return r if r["status"] in ("completed", "failed") else None

    done_row = wait_until(done, 120, "the model", interval=0.2)
    assert done_row["status"] == "completed", (done_row, station.worker_logs())
    running = [p for stage, p in seen if stage not in ("queued", "done")]
    assert running and running == sorted(running)  # progress by stage, only forward
    assert {"visual hull"} <= {stage for stage, _ in seen} | set(done_row["metrics"]["seconds"])
    assert set(done_row["outputs"]) == {"model.glb", "report.json"}

    glb = station.client.get(done_row["outputs"]["model.glb"])
    assert glb.status_code == 200 and glb.data[:4] == b"glTF"
    model_dir = _model_dir(station, completed_scan)
    assert (model_dir / "model.glb").read_bytes() == glb.data
    assert not _work_dir(station, first["id"]).exists()
    distance = surface_distance(as_mesh(trimesh.load(model_dir / "model.glb")),
                                as_mesh(object_mesh()))
    with capsys.disabled():
        print(f"\nscan-job masks, nominal poses, 1280x960: mean {distance.mean_pct:.3f} %, "
              f"max {distance.max_pct:.2f} % of the diagonal")
    assert distance.mean_pct <= 1.0


def test_cancel_while_running_stops_the_job_and_keeps_the_last_model(station,
                                                                     completed_scan) -> None:
    model = _model_dir(station, completed_scan) / "model.glb"
    before = model.stat().st_mtime_ns
    row = _start(station, completed_scan)
    _wait_status(station, row["id"], "running")
    cancelled = station.post(f"{_recon(station, row['id'])}/cancel")["reconstruction"]
    assert cancelled["status"] == "cancelled"
    wait_until(lambda: not _work_dir(station, row["id"]).exists(), 30, "the work folder to go")
    assert model.stat().st_mtime_ns == before  # the previous model was not replaced
    again = station.get(_recon(station, row["id"]))["reconstruction"]
    assert again["status"] == "cancelled" and again["outputs"] == {}
    assert station.post(f"{_recon(station, row['id'])}/cancel", 409)["error"]["message"]


def _horse_of(worker_pid: int) -> int | None:
    """The work-horse RQ forked for the job (a child of the worker process)."""
    children = []
    for task in Path(f"/proc/{worker_pid}/task").iterdir():
        text = (task / "children").read_text().split()
        children += [int(pid) for pid in text]
    return children[0] if children else None


def test_killed_job_reads_interrupted_and_starts_again(station, completed_scan) -> None:
    row = _start(station, completed_scan)
    _wait_status(station, row["id"], "running")
    horse = wait_until(lambda: _horse_of(station.workers["processing"].pid), 10, "the horse")
    os.kill(horse, signal.SIGKILL)
    interrupted = _wait_status(station, row["id"], "interrupted", 30)
    assert "Start it again" in interrupted["error"]
    # Started again by a new POST: a new job that the same worker runs.
    again = _start(station, completed_scan)
    assert again["id"] != row["id"]
    _wait_status(station, again["id"], "running")
    station.post(f"{_recon(station, again['id'])}/cancel")


def test_deleting_the_session_takes_a_running_reconstruction_and_its_files(
        station, completed_scan) -> None:
    row = _start(station, completed_scan)
    _wait_status(station, row["id"], "running")
    response = station.client.delete(f"/api/v1/sessions/{completed_scan['session_id']}")
    assert response.status_code == 204, response.get_json()
    station.get(_recon(station, row["id"]), 404)
    wait_until(lambda: not _work_dir(station, row["id"]).exists(), 30, "the work folder to go")
    session_dir = station.data_dir / "sessions" / str(completed_scan["session_id"])
    assert not session_dir.exists()
    # The job saw its row gone and stopped: nothing came back afterwards.
    wait_until(lambda: b"stopped: cancelled" in b"".join(
        p.read_bytes() for p in station.root.glob("worker-processing.log")), 30, "the job")
    assert not session_dir.exists()
