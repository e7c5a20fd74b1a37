"""What other slices add to what happens to a scan, without scans importing them.

A slice registers a function here at import (reconstruction registers its automatic start);
the scan run calls every registered function once a scan has completed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger("scanner.scans")

# after_scan_completed(scan_id): called in the scan worker after the scan's COMPLETED status
# has committed. A hook must be quick (it runs in the worker that drives the rig).
AfterScanCompleted = Callable[[int], None]
_after_scan_completed: list[AfterScanCompleted] = []


def after_scan_completed(hook: AfterScanCompleted) -> AfterScanCompleted:
    """Register `hook(scan_id)`; usable as a decorator."""
    if hook not in _after_scan_completed:  # a module imported twice registers once
        _after_scan_completed.append(hook)
    return hook


def run_after_scan_completed(scan_id: int) -> None:
    """Call every after-completed hook. The scan has completed and stays so: a failing hook is
    logged and the others still run."""
    for hook in list(_after_scan_completed):
        try:
            hook(scan_id)
        except Exception:  # noqa: BLE001 - see above
            log.exception("Scan %s: an after-completed step (%s) failed", scan_id,
                          getattr(hook, "__name__", hook))
