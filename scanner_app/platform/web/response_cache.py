"""Answers kept in this process between requests, each under a "changed" stamp (issue 15).

A view whose answer depends only on some tables (never on who asks, once let in) can keep
the body it built under a key and the stamp(s) those tables' writers change after every
commit (sessions/totals.py keeps the sessions stamp). The next request with the same key
and the same stamp gets the kept body: one small file read instead of queries, ORM objects
and JSON. A different stamp, or a body older than `max_age` seconds (writes that bypass the
stamp), builds it again.

The caller must read the stamp BEFORE it reads what the body is built from, from a snapshot
taken after that read: a commit the body missed then changes the stamp afterwards, so the
body is never served under a stamp that came after a change it does not show.

Bounded (least recently used entries go first) so that many different query strings cannot
fill memory; safe to use from the web server's threads.

HTML kept this way: platform/web/kept_html.py.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")

class StampedCache(Generic[T]):
    """key -> (stamp, when built, value), at most `size` keys."""

    def __init__(self, size: int = 64, max_age: float = 60.0) -> None:
        self.size = size
        self.max_age = max_age
        self._entries: OrderedDict[Hashable, tuple[Hashable, float, T]] = OrderedDict()
        self._lock = threading.Lock()
        self.builds = 0  # how many times a value was built (tests and benchmarks read it)

    def get(self, key: Hashable, stamp: Hashable) -> T | None:
        """The value kept for `key` under `stamp`, or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            kept_stamp, built_at, value = entry
            if kept_stamp != stamp or time.monotonic() - built_at >= self.max_age:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: Hashable, stamp: Hashable, value: T, built_at: float) -> None:
        """Keep `value` for `key` under `stamp`; `built_at` is time.monotonic() taken when
        the stamp was read (before the value was built)."""
        with self._lock:
            self._entries[key] = (stamp, built_at, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def get_or_build(self, key: Hashable, stamp: Hashable | None, build: Callable[[], T]) -> T:
        """The kept value, or `build()` (kept unless `stamp` is None: nothing to key it to)."""
        if stamp is not None:
            kept = self.get(key, stamp)
            if kept is not None:
                return kept
        built_at = time.monotonic()
        value = build()
        self.builds += 1
        if stamp is not None:
            self.put(key, stamp, value, built_at)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
