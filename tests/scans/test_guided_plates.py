"""Background plates on a rig that cannot photograph its empty platter by itself ([scans]
guided_plates): the first scan of a set-up pauses, asks for the object to be taken off, takes a
plate at every ring elevation (the tilt moves), asks for the object back, and scans; the next
scan reuses the plates without asking. The rig is the mock's parts under another driver name,
so it takes the real rig's path, and its masks are checked against the renderer."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from hal.masks import mask_iou, read_mask
from hal.mock.rig import build_rig as build_mock_rig
from hal.mock.scene import MockScene
from scanner_app.scans import run as scan_run
from scanner_app.scans.rings import OBJECT_BACK_MESSAGE, OBJECT_OFF_MESSAGE
from tests.scans.test_scan_job_failures import run_job

RINGS = [{"elevation_deg": 10, "frames": 2}, {"elevation_deg": 40, "frames": 2}]


@pytest.fixture
def bench(make_station, monkeypatch):
    station = make_station()
    settings = station.app.config["SCANNER_SETTINGS"]
    hal = dataclasses.replace(settings.hal, tilt=dataclasses.replace(settings.hal.tilt,
                                                                    driver="servo"))
    station.app.config["SCANNER_SETTINGS"] = dataclasses.replace(
        settings, hal=hal, guided_plates=True)

    def bench_rig(hal_settings):
        rig = build_mock_rig(hal_settings)
        rig.driver = "bench"  # not "mock": nothing shows it the empty platter but a person
        return rig

    monkeypatch.setattr(scan_run, "load_rig", bench_rig)
    return station


def run_in_thread(station, scan_id: int) -> tuple[threading.Thread, list[str]]:
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(run_job(station, scan_id)))
    thread.start()
    return thread, result


def test_the_first_scan_of_a_set_up_asks_for_the_plates_and_the_next_reuses_them(bench):
    station = bench
    scan = station.start_scan(profile="quick", rings=RINGS)
    thread, result = run_in_thread(station, scan["id"])
    try:
        for message in (OBJECT_OFF_MESSAGE, OBJECT_BACK_MESSAGE):
            waiting = station.wait_for_scan(
                scan["id"], lambda s, m=message: s["status"] == "paused" and s["message"] == m,
                message, timeout=60)
            assert waiting["frames_captured"] == 0
            station.action(scan["id"], "resume")
    finally:
        thread.join(120)
    assert result == ["completed"]
    plates = sorted((station.data_dir / "plates").glob("*/*.jpg"))
    assert [p.name for p in plates] == ["elev_+010.000.jpg", "elev_+040.000.jpg"]
    meta = station.metadata(scan)
    assert set(meta["plates"]["taken"]) == {"10", "40"}
    scene = MockScene()
    for entry in meta["frames"]:
        mask = read_mask(station.session_dir(scan["session_id"]) / entry["mask"])
        exact = scene.render(entry["elevation_deg"], entry["angle"],
                             (entry["width"], entry["height"])).mask
        assert mask_iou(mask, exact) >= 0.95, entry["file"]

    again = station.start_scan(profile="quick", rings=RINGS)
    assert run_job(station, again["id"]) == "completed"  # nobody asked: it would wait forever
    assert sorted((station.data_dir / "plates").glob("*/*.jpg")) == plates
    assert Path(station.metadata(again)["plates"]["taken"]["40"]["file"]) == plates[1]
