"""What the process that owns the rig (the hardware worker) and the web process say to each
other about the idle rig, through Redis. Nothing here touches hardware.

- `rig:preview:watch`: refreshed (short TTL) by every open preview stream or snapshot; the
  preview job ends a few seconds after the last watcher went away.
- `rig:preview:frame` + `rig:preview:seq` + `rig:preview:meta`: the newest preview frame
  (JPEG), a counter that goes up with every frame, and what the frame was taken with
  (exposure, angle, the framing overlay with the object mask's outlines). The frame expires
  on its own when the job stops.
- `rig:preview:job`: the id of the preview job that should be running (at most one).
- `rig:light`: whether the preview lights the rig ("off" while switched off; the default is
  on, as a scan does).
- `rig:state`: the rig as the last job that held it left it (JSON).
"""

from __future__ import annotations

import json
from typing import Any

from redis import Redis

WATCH_KEY = "rig:preview:watch"
FRAME_KEY = "rig:preview:frame"
SEQ_KEY = "rig:preview:seq"
META_KEY = "rig:preview:meta"
JOB_KEY = "rig:preview:job"
LIGHT_KEY = "rig:light"
STATE_KEY = "rig:state"

WATCH_SECONDS = 4  # a watcher that stops refreshing is gone this long after
FRAME_SECONDS = 5  # a frame older than this is no longer "live"


def watch(connection: Redis, seconds: float = WATCH_SECONDS) -> None:
    """Someone is looking at the preview (for `seconds` more, unless refreshed)."""
    connection.set(WATCH_KEY, b"1", px=int(seconds * 1000))


def watched(connection: Redis) -> bool:
    return bool(connection.exists(WATCH_KEY))


def publish_frame(connection: Redis, jpeg: bytes, meta: dict[str, Any]) -> int:
    """Store the newest frame; returns its sequence number."""
    pipe = connection.pipeline()
    pipe.set(FRAME_KEY, jpeg, ex=FRAME_SECONDS)
    pipe.set(META_KEY, json.dumps(meta), ex=FRAME_SECONDS)
    pipe.incr(SEQ_KEY)
    return int(pipe.execute()[-1])


def latest_frame(connection: Redis) -> tuple[int, bytes | None]:
    """(sequence number, JPEG or None when no live frame)."""
    seq, frame = connection.mget(SEQ_KEY, FRAME_KEY)
    return int(seq or 0), frame


def frame_meta(connection: Redis) -> dict[str, Any] | None:
    raw = connection.get(META_KEY)
    return json.loads(raw) if raw else None


def clear_frame(connection: Redis) -> None:
    connection.delete(FRAME_KEY, META_KEY)


def light_wanted(connection: Redis) -> bool:
    return connection.get(LIGHT_KEY) != b"off"


def want_light(connection: Redis, on: bool) -> None:
    connection.set(LIGHT_KEY, b"on" if on else b"off")


def publish_state(connection: Redis, state: dict[str, Any]) -> None:
    connection.set(STATE_KEY, json.dumps(state))


def last_state(connection: Redis) -> dict[str, Any] | None:
    raw = connection.get(STATE_KEY)
    return json.loads(raw) if raw else None
