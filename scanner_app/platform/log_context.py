"""Log lines that say what they are about: `session=12 scan=40` (or `upload=7`) on every line a
job logs, so a station's log can be grepped for one scan.

The ids live in a context variable, bound where a job learns them (`bind_log_ids`, or the
`log_ids` context manager), and a logging filter on the handlers copies them onto every record
as `record.ids` (text, empty when nothing is bound) and `record.log_ids` (a dict, for a JSON
formatter). Threads started by a job begin with an empty context: they bind their own ids.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar

# The format the station's processes log with: the ids right after the logger's name.
LOG_FORMAT = "%(asctime)s %(name)s%(ids)s: %(message)s"
ID_ORDER = ("session", "scan", "upload", "job")

_ids: ContextVar[dict[str, object] | None] = ContextVar("scanner_log_ids", default=None)


def current_log_ids() -> dict[str, object]:
    return dict(_ids.get() or {})


def bind_log_ids(**ids: object) -> None:
    """Add ids (session=, scan=, upload=, job=) to this context's log lines; None removes one."""
    merged = current_log_ids()
    for key, value in ids.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    _ids.set(merged)


@contextlib.contextmanager
def log_ids(**ids: object) -> Iterator[None]:
    """The ids for the lines logged inside the block only."""
    token = _ids.set({**current_log_ids(), **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _ids.reset(token)


def format_ids(ids: dict[str, object]) -> str:
    keys = [k for k in ID_ORDER if k in ids] + sorted(k for k in ids if k not in ID_ORDER)
    return "".join(f" {key}={ids[key]}" for key in keys)


class LogIdsFilter(logging.Filter):
    """Puts the bound ids on each record (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = current_log_ids()
        record.log_ids = ids
        record.ids = format_ids(ids)
        return True


def install_log_context(logger: logging.Logger | None = None) -> None:
    """Attach the filter to every handler of `logger` (the root logger by default). On the
    handlers, not the logger: records from child loggers only pass the handlers' filters."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, LogIdsFilter) for f in handler.filters):
            handler.addFilter(LogIdsFilter())
