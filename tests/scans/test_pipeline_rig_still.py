"""The capture pipeline records a frame once the rig stands at its next pose (issue 15): its
disk syncs and CPU fall into the settle and exposure time, not into the move. A recorder that
is behind does not wait, and drain, close and a silent rig never hold a frame for good."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hal import CaptureInfo
from scanner_app.scans import pipeline as capture_pipeline
from scanner_app.scans.pipeline import CapturePipeline, TakenFrame


def frame(index: int, tmp_path: Path) -> TakenFrame:
    path = tmp_path / f"frame_{index:04d}.jpg"
    return TakenFrame(index=index, angle=index * 10.0, taken_at=datetime.now(UTC), path=path,
                      info=CaptureInfo(path=path, width=8, height=6, settings={}), fields={})


class Recorder:
    """The record callable: notes when each frame's recording began; may hold a frame."""

    def __init__(self) -> None:
        self.started: dict[int, float] = {}
        self.began: dict[int, threading.Event] = {}
        self.hold: dict[int, threading.Event] = {}

    def __call__(self, taken: TakenFrame) -> None:
        self.started[taken.index] = time.monotonic()
        self.began.setdefault(taken.index, threading.Event()).set()
        if taken.index in self.hold:
            assert self.hold[taken.index].wait(10), "the test never released the frame"

    def began_event(self, index: int) -> threading.Event:
        return self.began.setdefault(index, threading.Event())


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def pipeline(sqlite_app, recorder):
    line = CapturePipeline(sqlite_app, recorder, name="test-recorder")
    yield line
    line.close()


def test_a_frame_is_recorded_once_the_rig_stands_not_during_the_move(pipeline, recorder,
                                                                      tmp_path):
    pipeline.submit(frame(0, tmp_path))
    time.sleep(0.3)  # the move: without the gate the recorder would start at once
    still_at = time.monotonic()
    pipeline.rig_still()
    pipeline.drain()
    assert recorder.started[0] >= still_at
    assert pipeline.recorded == 1 and pipeline.pending == {}


def test_a_recorder_behind_the_rig_records_at_once(pipeline, recorder, tmp_path, monkeypatch):
    monkeypatch.setattr(capture_pipeline, "STILL_WAIT_SECONDS", 30.0)
    recorder.hold[0] = threading.Event()
    pipeline.submit(frame(0, tmp_path))
    pipeline.rig_still()
    assert recorder.began_event(0).wait(10)
    pipeline.submit(frame(1, tmp_path))  # the rig moves on twice while frame 0 records
    pipeline.submit(frame(2, tmp_path))
    recorder.hold[0].set()
    # Frame 1 has frame 2 queued behind it: recorded without waiting for the rig.
    assert recorder.began_event(1).wait(10), "frame 1 waited for the rig although behind"
    # Frame 2 is the newest: it waits for the platter to stand.
    assert not recorder.began_event(2).is_set()
    pipeline.rig_still()
    pipeline.drain()
    assert sorted(recorder.started) == [0, 1, 2]
    assert recorder.started[0] <= recorder.started[1] <= recorder.started[2]


@pytest.mark.parametrize("ending", ["drain", "close"])
def test_drain_and_close_record_a_frame_the_rig_never_released(pipeline, recorder, tmp_path,
                                                               monkeypatch, ending):
    monkeypatch.setattr(capture_pipeline, "STILL_WAIT_SECONDS", 30.0)
    pipeline.submit(frame(0, tmp_path))
    done = threading.Thread(target=getattr(pipeline, ending))
    started = time.monotonic()
    done.start()
    done.join(10)
    assert not done.is_alive(), f"{ending}() waited for a rig that never stood still"
    assert time.monotonic() - started < 10
    assert 0 in recorder.started and pipeline.pending == {}


def test_a_rig_that_never_says_still_delays_recording_but_never_stops_it(pipeline, recorder,
                                                                        tmp_path, monkeypatch):
    monkeypatch.setattr(capture_pipeline, "STILL_WAIT_SECONDS", 0.2)
    submitted = time.monotonic()
    pipeline.submit(frame(0, tmp_path))
    assert recorder.began_event(0).wait(10), "the frame was never recorded"
    assert recorder.started[0] - submitted >= 0.2
