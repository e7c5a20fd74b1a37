"""What other slices add to what happens to a session, without sessions importing them.

A slice registers a function here (at import, like a blueprint registers its routes); the
sessions service calls every registered function at the right moment. Scans, for example,
rewrite the session id inside their moved metadata files after a merge.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("scanner.sessions")

# after_merge(target_session_id, moved_paths): called after a merge has committed, with the
# new paths of every entry that moved into the target session's folder.
AfterMerge = Callable[[int, list[Path]], None]
_after_merge: list[AfterMerge] = []


def after_merge(hook: AfterMerge) -> AfterMerge:
    """Register `hook(target_session_id, moved_paths)`; usable as a decorator."""
    if hook not in _after_merge:  # a module imported twice registers once
        _after_merge.append(hook)
    return hook


def run_after_merge(target_session_id: int, moved: list[Path]) -> None:
    """Call every after-merge hook. The merge has committed: a failing hook is logged and the
    others still run (what they fix on disk can lag; the database is right)."""
    for hook in list(_after_merge):
        try:
            hook(target_session_id, moved)
        except Exception:  # noqa: BLE001 - see above
            log.exception("An after-merge step (%s) failed", getattr(hook, "__name__", hook))


# before_delete(session_id): called inside the delete's transaction, before its rows go, so a
# slice can remove or stop what belongs to the session (a running reconstruction).
BeforeDelete = Callable[[int], None]
_before_delete: list[BeforeDelete] = []


def before_delete(hook: BeforeDelete) -> BeforeDelete:
    """Register `hook(session_id)`; usable as a decorator."""
    if hook not in _before_delete:
        _before_delete.append(hook)
    return hook


def run_before_delete(session_id: int) -> None:
    """Call every before-delete hook. One that fails fails the delete (its transaction is
    rolled back), so nothing is left half-deleted."""
    for hook in list(_before_delete):
        hook(session_id)
