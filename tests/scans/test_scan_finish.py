"""The end of a scan, with real worker processes: its files are complete the moment it reads
completed, deleting or merging its session right then leaves nothing behind, and a worker
stopped the moment it takes a scan stops that scan instead of running it to the end."""

from __future__ import annotations

import signal
import zipfile

import redis
from rq.job import Job

from tests.scans.conftest import Station
from tests.scans.test_scan_worker import assert_frames_consistent, assert_rig_released
from tests.support import wait_until


def session_dirs(station: Station) -> list[str]:
    root = station.data_dir / "sessions"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def export_zip(station: Station, session_id: int, scan_id: int):
    return station.session_dir(session_id) / "exports" / f"scan-{scan_id}.zip"


def completed_with_its_zip(station: Station, scan: dict, frames: int) -> dict:
    """Poll until the scan reads completed and check, at that very moment, that its ZIP is
    there with every frame and the final metadata."""
    done = station.wait_for_status(scan["id"], "completed")
    path = export_zip(station, done["session_id"], done["id"])
    assert path.is_file(), "the scan reads completed but its ZIP is not there yet"
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert sorted(n for n in names if n.endswith(".jpg")) == [
            f"images/scans/{done['id']}/frame_{i:04d}.jpg" for i in range(frames)]
        meta = archive.read(f"metadata/scans/{done['id']}.json").decode()
    assert '"status": "completed"' in meta and '"finished_at": null' not in meta
    assert station.metadata(done)["scan"]["status"] == "completed"
    return done


def wait_for_job_end(station: Station, job_id: str) -> None:
    """Until RQ says the job returned: after that, the job can write nothing more."""
    connection = redis.Redis.from_url(station.redis_url)
    wait_until(lambda: Job.fetch(job_id, connection=connection).get_status(refresh=True)
               in ("finished", "failed"), 15, f"job {job_id} to end")


def test_deleting_the_session_the_moment_its_scan_completes_leaves_no_directory(make_station):
    station = make_station()
    station.start_worker()
    trial = station.client.post("/api/v1/sessions",
                                json={"name": "Delete me", "make_current": False}
                                ).get_json()["session"]
    scan = station.start_scan(session_id=trial["id"], profile="quick", frames=3)
    completed_with_its_zip(station, scan, 3)

    response = station.client.delete(f"/api/v1/sessions/{trial['id']}")
    assert response.status_code == 204, response.get_json()
    wait_for_job_end(station, f"scan-{scan['id']}")
    assert session_dirs(station) == []  # nothing came back for the deleted session
    assert station.client.get(f"/api/v1/sessions/{trial['id']}").status_code == 404


def test_merging_the_session_the_moment_its_scan_completes_moves_everything(make_station):
    station = make_station()
    station.start_worker()
    source, target = (station.client.post("/api/v1/sessions", json={
        "name": name, "make_current": False}).get_json()["session"]
        for name in ("Source", "Target"))
    scan = station.start_scan(session_id=source["id"], profile="quick", frames=3)
    completed_with_its_zip(station, scan, 3)

    response = station.client.post(f"/api/v1/sessions/{source['id']}/merge",
                                   json={"into": target["id"]})
    assert response.status_code == 200, response.get_json()
    wait_for_job_end(station, f"scan-{scan['id']}")
    assert session_dirs(station) == [str(target["id"])]  # the source did not come back
    assert export_zip(station, target["id"], scan["id"]).is_file()
    moved = station.scan(scan["id"])
    assert moved["session_id"] == target["id"] and moved["status"] == "completed"
    assert station.session(target["id"])["captures_count"] == 3


def worker_state(connection: redis.Redis, name: str) -> str | None:
    state = connection.hget(f"rq:worker:{name}", "state")
    return state.decode() if state else None


def test_worker_stopped_as_it_takes_a_scan_stops_that_scan(make_station):
    """SIGTERM the moment the worker starts on the job (before or just after it forks its
    work-horse, before the horse could install its own handler): the scan must stop before
    its next frame as interrupted, not run all its frames."""
    station = make_station()
    worker = station.start_worker("--name", "stopped-at-once")
    connection = redis.Redis.from_url(station.redis_url)
    wait_until(lambda: worker_state(connection, "stopped-at-once") == "idle", 20,
               "the worker to listen")
    frames = 40  # about 12 s of frames: far more than a stop needs
    scan = station.start_scan(profile="quick", frames=frames)
    wait_until(lambda: worker_state(connection, "stopped-at-once") == "busy", 20,
               "the worker to take the scan", interval=0.002)
    worker.send_signal(signal.SIGTERM)

    stopped = station.wait_for_scan(scan["id"], lambda s: s["status"] != "queued"
                                    and s["status"] != "running", "stopped", timeout=15)
    assert stopped["status"] == "interrupted", stopped
    assert stopped["frames_captured"] < 10
    assert "worker was stopped" in stopped["error"] and "resume the scan" in stopped["error"]
    assert worker.wait(15) == 0
    assert_frames_consistent(station, stopped, stopped["frames_captured"])
    assert_rig_released(station, stopped)
    assert not (station.data_dir / "worker-stop" / "stopped-at-once").exists()

    resumed = station.action(scan["id"], "resume")  # resumable: queued again for a worker
    assert resumed["status"] == "queued" and resumed["error"] is None
    assert station.action(scan["id"], "cancel")["status"] == "cancelled"
