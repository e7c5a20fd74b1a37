"""Benchmark: the session export ZIP streams in flat memory, whatever the session's size.

Builds a session of BENCH_EXPORT_MB megabytes (default 256) of incompressible "frames" plus
metadata in a temp data dir, downloads GET /api/v1/sessions/<id>/export.zip through the app
(chunks are counted and dropped, as a client on a socket would), and reports the time and the
growth of the process's peak resident memory during the download.

Target: peak memory grows by less than BENCH_EXPORT_MAX_GROWTH_MB (default 64 MB) for the
whole session, i.e. it does not grow with the session. Run alone: python -m bench.export_memory
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import zlib
from pathlib import Path

MB = 1024 * 1024
FRAME_BYTES = 4 * MB


def _peak_rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    """Linux resets VmHWM to the current RSS when 5 is written to clear_refs."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _fill_session(session_dir: Path, total_mb: int) -> int:
    frames = session_dir / "images" / "scans" / "1"
    frames.mkdir(parents=True, exist_ok=True)
    written = 0
    index = 0
    block = os.urandom(MB)
    while written < total_mb * MB:
        with open(frames / f"frame-{index:04d}.jpg", "wb") as handle:
            for step in range(FRAME_BYTES // MB):
                # Different bytes per MB so nothing compresses or dedups by accident.
                handle.write(bytes([index % 251, step % 251]) + block[2:])
        written += FRAME_BYTES
        index += 1
    metadata = session_dir / "metadata" / "scans"
    metadata.mkdir(parents=True, exist_ok=True)
    (metadata / "1.json").write_text('{"frames": [' + ",".join(["{}"] * index) + "]}")
    return written


def main(argv: list[str] | None = None) -> int:
    total_mb = int(os.environ.get("BENCH_EXPORT_MB", "256"))
    limit_mb = float(os.environ.get("BENCH_EXPORT_MAX_GROWTH_MB", "64"))
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        env = {"SCANNER_DATA_DIR": str(data_dir), "SCANNER_HAL": "mock",
               "SCANNER_TIMEZONE": "UTC"}
        from flask_migrate import upgrade

        from scanner_app import create_app
        from scanner_app.accounts.service import create_api_key
        from scanner_app.config import load_settings
        from scanner_app.sessions.resolver import resolve_session

        app = create_app(load_settings(env=env), overrides={"TESTING": True})
        with app.app_context():
            upgrade()
            session_id = resolve_session(None)
            key = create_api_key("bench")
        size = _fill_session(data_dir / "sessions" / str(session_id), total_mb)

        client = app.test_client()
        exact = _reset_peak()
        before_kb = _peak_rss_kb()
        started = time.perf_counter()
        response = client.get(f"/api/v1/sessions/{session_id}/export.zip",
                              headers={"X-Api-Key": key})
        assert response.status_code == 200 and response.is_streamed
        received = chunks = 0
        crc = 0
        for chunk in response.response:
            received += len(chunk)
            chunks += 1
            crc = zlib.crc32(chunk[:64], crc)  # touch the data, keep nothing
        response.close()
        seconds = time.perf_counter() - started
        growth_mb = (_peak_rss_kb() - before_kb) / 1024

    ok = growth_mb < limit_mb
    note = "" if exact else " (peak could not be reset: growth is an upper bound)"
    print(f"export_memory: {size / MB:.0f} MB session -> {received / MB:.0f} MB ZIP in "
          f"{chunks} chunks, {seconds:.2f} s ({received / MB / seconds:.0f} MB/s); peak memory "
          f"grew {growth_mb:.1f} MB (target < {limit_mb:.0f} MB){note}: "
          f"{'OK' if ok else 'TOO MUCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
