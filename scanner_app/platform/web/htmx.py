"""htmx in one place: whether a request came from htmx, and the events the pages send each
other (a response header `HX-Trigger: <event>` makes every element listening for
`<event> from:body` refresh itself)."""

from __future__ import annotations

from htmx_flask import request

# A scan started, finished, or changed state: current-session panel, counters, captures.
SCAN_CHANGED = "scan-changed"
# Uploads finished processing: counters and captures refresh.
UPLOADS_CHANGED = "uploads-changed"


def is_htmx() -> bool:
    """True for a request htmx sent (it asks for a part of a page, not a whole page)."""
    return bool(request.htmx)


def trigger(event: str) -> dict[str, str]:
    """Response headers that fire `event` on the page that made the request."""
    return {"HX-Trigger": event}
