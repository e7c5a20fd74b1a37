"""`scanner worker --station`: refused with a sentence when it could not work (another queue,
no key, not an http address, a station that does not answer), before it takes any job."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import run_cli
from tests.web.live_station import free_port


@pytest.mark.parametrize(("args", "says"), [
    (["--queues", "hardware", "--api-key", "k"], "serves only the processing queue"),
    (["--queues", "processing"], "give the station's API key with --api-key"),
    (["--queues", "processing", "--api-key", "k", "--station", "scanner.local:5000"],
     "http://HOST:PORT"),
])
def test_bad_flags_are_refused(tmp_path: Path, args: list[str], says: str) -> None:
    station = [] if "--station" in args else ["--station", "http://127.0.0.1:9"]
    done = run_cli(tmp_path, "worker", *station, *args)
    assert done.returncode != 0
    assert says in " ".join((done.stdout + done.stderr).split()), done.stderr


def test_a_station_that_does_not_answer_is_named(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = run_cli(tmp_path, "worker", "--queues", "processing", "--station", url,
                   "--api-key", "k", SCANNER_STATION_URL="")
    assert done.returncode != 0
    assert f"The station at {url} did not answer" in done.stderr, done.stderr
