"""Benchmark: pages stay flat however much history a station holds (issue 15).

Two stations in one run, both SQLite files built by bench/history.py: a baseline of 10
sessions (1,000 captures) and one of 10,000 sessions and 1,000,000 captures (one session of
50,000). Each page is requested through the Flask test client (in process, signed in with an
API key; no network), alternating between the two stations, ROUNDS times after WARMUP; the
figure is the median of the big station over the median of the baseline:

  (CPU time of the process, see CLOCK; BENCH_PAGING_CLOCK=wall for wall time)
  dashboard /, GET /api/v1/sessions, the session page, the /sessions list partial (htmx),
  the /uploads/batch poll of 50 uploads (htmx)                                  target <= 1.5x
  GET /api/v1/sessions/<id>/captures, last page over first page, 50,000 captures  target <= 1.2x

Also printed, without a target: the middle page of those captures, and the same pages'
sizes. Exit 1 when a target is missed. Run alone: python -m bench.paging
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.history import History, build_history, station_app

ROUNDS = int(os.environ.get("BENCH_PAGING_ROUNDS", "15"))
# CPU time of this process (request handling and SQLite both run in it, on warm caches):
# on a 2-core machine shared with other work, wall time mostly measures the neighbours.
# BENCH_PAGING_CLOCK=wall measures wall time instead.
CLOCK = time.perf_counter if os.environ.get("BENCH_PAGING_CLOCK") == "wall" else time.process_time
WARMUP = 3
PAGE_TARGET = 1.5
LAST_PAGE_TARGET = 1.2
HX = {"HX-Request": "true"}


class Station:
    """A station app on a copy of a built history, and a client that sends an API key."""

    def __init__(self, data_dir: Path, history: History) -> None:
        from scanner_app.accounts.service import create_api_key

        self.history = history
        self.app = station_app(data_dir, history)
        with self.app.app_context():
            key = create_api_key("bench")
        self.client = self.app.test_client()
        self.client.environ_base["HTTP_X_API_KEY"] = key

    def get(self, url: str, headers: dict[str, str] | None = None) -> tuple[float, int]:
        started = CLOCK()
        response = self.client.get(url, headers=headers or {})
        body = response.get_data()
        seconds = CLOCK() - started
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} {body[:300]!r}")
        return seconds, len(body)

    def close(self) -> None:
        from scanner_app.platform.extensions import db

        with self.app.app_context():
            db.engine.dispose()


def _pages(station: Station) -> dict[str, tuple[str, dict[str, str] | None]]:
    h = station.history
    ids = ",".join(str(i) for i in h.batch_upload_ids)
    return {
        "dashboard /": ("/", None),
        "GET /api/v1/sessions": ("/api/v1/sessions", None),
        "session page": (f"/sessions/{h.newest_session_id}", None),
        "/sessions list partial": ("/sessions", HX),
        "/uploads/batch poll": (f"/uploads/batch?ids={ids}", HX),
    }


def _measure(pairs: list[tuple[Station, str, dict | None]]) -> list[tuple[float, int]]:
    """Median seconds and size of each (station, url, headers), requests interleaved."""
    times: list[list[float]] = [[] for _ in pairs]
    sizes = [0] * len(pairs)
    for round_no in range(WARMUP + ROUNDS):
        for i, (station, url, headers) in enumerate(pairs):
            seconds, size = station.get(url, headers)
            if round_no >= WARMUP:
                times[i].append(seconds)
                sizes[i] = size
    return [(statistics.median(t), s) for t, s in zip(times, sizes, strict=True)]


def _line(name: str, big: tuple[float, int], base: tuple[float, int], target: float,
          base_name: str = "10 sessions") -> tuple[str, bool]:
    ratio = big[0] / base[0]
    ok = ratio <= target
    return (f"  {name:<34} {big[0] * 1000:8.2f} ms ({big[1] / 1024:6.1f} KB)  "
            f"{base_name}: {base[0] * 1000:7.2f} ms ({base[1] / 1024:6.1f} KB)  "
            f"ratio {ratio:5.2f}x  target <= {target}x  {'OK' if ok else 'MISSED'}"), ok


def main(argv: list[str] | None = None) -> int:
    import logging

    logging.disable(logging.INFO)  # the station's request lines are not the figure
    started = time.perf_counter()
    big_history = build_history()
    base_history = build_history(sessions=10, captures=1_000, big=0)
    built = time.perf_counter() - started
    clock = "wall" if CLOCK is time.perf_counter else "CPU"
    print(f"paging: Flask test client, in process, {clock} time; medians of {ROUNDS} requests "
          f"after {WARMUP} warm-up, interleaved. Big station: {big_history.sessions} sessions, "
          f"{big_history.captures} captures (history "
          f"{'built' if big_history.build_seconds else 'cached'}, {built:.1f} s); baseline: "
          f"{base_history.sessions} sessions, {base_history.captures} captures.")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-paging-") as tmp:
        big = Station(Path(tmp) / "big", big_history)
        base = Station(Path(tmp) / "base", base_history)
        try:
            names = list(_pages(big))
            pairs = []
            for name in names:
                pairs += [(big, *_pages(big)[name]), (base, *_pages(base)[name])]
            measured = _measure(pairs)
            for n, name in enumerate(names):
                results.append(_line(name, measured[2 * n], measured[2 * n + 1], PAGE_TARGET))

            # Not a target: the same page size as the baseline's whole list, which leaves only
            # what history itself costs (the totals are kept between requests, sessions/totals.py).
            same = _measure([(big, "/api/v1/sessions?per_page=10", None),
                             (base, "/api/v1/sessions?per_page=10", None)])
            line, _ok = _line("GET /api/v1/sessions?per_page=10", same[0], same[1],
                              PAGE_TARGET)
            results.append((line.replace("OK", "(no target)").replace("MISSED",
                                                                      "(no target)"), True))

            session_id = big_history.big_session_id
            url = f"/api/v1/sessions/{session_id}/captures"
            per_page = 100
            last = math.ceil(50_000 / per_page)
            first, middle, last_page = _measure([
                (big, f"{url}?page=1", None), (big, f"{url}?page={last // 2}", None),
                (big, f"{url}?page={last}", None)])
            results.append(_line(f"captures page {last} of {last} (50k)", last_page, first,
                                 LAST_PAGE_TARGET, base_name="page 1"))
            line, _ok = _line(f"captures page {last // 2} of {last} (50k)", middle, first,
                              LAST_PAGE_TARGET, base_name="page 1")
            results.append((line.replace("OK", "(no target)").replace("MISSED",
                                                                      "(no target)"), True))
        finally:
            big.close()
            base.close()
    for line, _ok in results:
        print(line)
    missed = [line for line, ok in results if not ok]
    print(f"paging: {'all targets met' if not missed else f'{len(missed)} target(s) missed'}")
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
