"""The status machines of scans, uploads, sessions and reconstructions: each status's value
(the contract's string, stored and sent as is), which changes are allowed, and the questions
that code and pages ask of a status ("can it be paused?") instead of comparing strings.

The tables below are the whole truth about transitions. Every status change is made by
`transition()` (models/transitions.py), a conditional UPDATE that only matches while the row
is in a status the table allows to reach the new one, so two processes racing for the same
row never both win. The CHECK constraints and partial-index predicates of the models are
generated from these enums (`sql_in`), so the schema and the code cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from sqlalchemy import String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class ScanStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def is_active(self) -> bool:
        """Holds the rig: while a scan is in one of these, no other scan may start."""
        return self in SCAN_ACTIVE

    @property
    def is_under_way(self) -> bool:
        """A job has claimed the scan and drives the rig (running, or paused between frames)."""
        return self in SCAN_UNDER_WAY

    @property
    def is_finished(self) -> bool:
        """Nothing can happen to the scan any more (an interrupted one can still resume)."""
        return not SCAN_TRANSITIONS[self]

    @property
    def is_running(self) -> bool:
        return self is ScanStatus.RUNNING

    @property
    def is_completed(self) -> bool:
        """Every frame taken and the scan closed: what a dataset or a model is made from."""
        return self is ScanStatus.COMPLETED

    @property
    def is_interrupted(self) -> bool:
        return self is ScanStatus.INTERRUPTED

    @property
    def can_pause(self) -> bool:
        """A pause is asked of the job (it acts between frames; a queued scan pauses as it
        starts), so only a scan the job will still run can be paused."""
        return self in (ScanStatus.QUEUED, ScanStatus.RUNNING)

    @property
    def can_resume(self) -> bool:
        """Paused: the job continues; interrupted: a new job continues from the next frame."""
        return self in (ScanStatus.PAUSED, ScanStatus.INTERRUPTED)

    @property
    def can_cancel(self) -> bool:
        return ScanStatus.CANCELLED in SCAN_TRANSITIONS[self]

    @property
    def needs_attention(self) -> bool:
        """Ended in a way a person should look at (the button's LED says so)."""
        return self in (ScanStatus.FAILED, ScanStatus.INTERRUPTED)

    @property
    def label(self) -> str:
        """The headline a person reads for a scan in this status."""
        return _SCAN_LABELS[self]


class UploadStatus(StrEnum):
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"

    @property
    def is_processing(self) -> bool:
        return self is UploadStatus.PROCESSING

    @property
    def is_finished(self) -> bool:
        return not UPLOAD_TRANSITIONS[self]

    @property
    def is_failed(self) -> bool:
        return self is UploadStatus.FAILED


class SessionStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"

    @property
    def is_active(self) -> bool:
        return self is SessionStatus.ACTIVE

    @property
    def is_completed(self) -> bool:
        return self is SessionStatus.COMPLETED

    @property
    def toggled(self) -> SessionStatus:
        """What the session page's one button switches the session to."""
        (target,) = SESSION_TRANSITIONS[self]
        return target


class ReconstructionStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def is_active(self) -> bool:
        """A job will run or runs it: no second one for the same scan meanwhile."""
        return self in RECONSTRUCTION_ACTIVE

    @property
    def can_cancel(self) -> bool:
        return ReconstructionStatus.CANCELLED in RECONSTRUCTION_TRANSITIONS[self]


# In definition order: the generated SQL lists them in this order (the schema's text).
SCAN_ACTIVE: tuple[ScanStatus, ...] = (ScanStatus.QUEUED, ScanStatus.RUNNING, ScanStatus.PAUSED)
SCAN_UNDER_WAY: tuple[ScanStatus, ...] = (ScanStatus.RUNNING, ScanStatus.PAUSED)

# from -> the statuses it may change to. Who makes each change:
#   queued -> running       the scan job claims the scan it was queued with
#   queued -> cancelled     the API, before a job picked it up
#   queued -> interrupted   recovery (its job was lost), or a resume whose enqueue failed
#   running <-> paused      the job, between frames, as `control` asks
#   running/paused -> ...   the job's end; recovery when the job died (-> interrupted)
#   interrupted -> queued   resume (a new job continues from the next frame)
#   interrupted -> cancelled  the API
# A completed scan is only ever reached from running: the last frame is taken running.
SCAN_TRANSITIONS: Mapping[ScanStatus, frozenset[ScanStatus]] = MappingProxyType({
    ScanStatus.QUEUED: frozenset({ScanStatus.RUNNING, ScanStatus.CANCELLED,
                                  ScanStatus.INTERRUPTED}),
    ScanStatus.RUNNING: frozenset({ScanStatus.PAUSED, ScanStatus.COMPLETED, ScanStatus.FAILED,
                                   ScanStatus.CANCELLED, ScanStatus.INTERRUPTED}),
    ScanStatus.PAUSED: frozenset({ScanStatus.RUNNING, ScanStatus.FAILED, ScanStatus.CANCELLED,
                                  ScanStatus.INTERRUPTED}),
    ScanStatus.INTERRUPTED: frozenset({ScanStatus.QUEUED, ScanStatus.CANCELLED}),
    ScanStatus.COMPLETED: frozenset(),
    ScanStatus.FAILED: frozenset(),
    ScanStatus.CANCELLED: frozenset(),
})

# An upload is recorded processing (or done at once, for a duplicate) and processed once.
UPLOAD_TRANSITIONS: Mapping[UploadStatus, frozenset[UploadStatus]] = MappingProxyType({
    UploadStatus.PROCESSING: frozenset({UploadStatus.DONE, UploadStatus.FAILED}),
    UploadStatus.DONE: frozenset(),
    UploadStatus.FAILED: frozenset(),
})

# A person marks a session completed; new work (or a person) makes it active again.
SESSION_TRANSITIONS: Mapping[SessionStatus, frozenset[SessionStatus]] = MappingProxyType({
    SessionStatus.ACTIVE: frozenset({SessionStatus.COMPLETED}),
    SessionStatus.COMPLETED: frozenset({SessionStatus.ACTIVE}),
})

RECONSTRUCTION_ACTIVE: tuple[ReconstructionStatus, ...] = (ReconstructionStatus.QUEUED,
                                                          ReconstructionStatus.RUNNING)

# A reconstruction is queued by the API and run once; a new POST starts a new one.
#   queued -> running       the job claims it
#   queued -> cancelled     the API, before a job picked it up (or the session is deleted)
#   queued -> interrupted   recovery: its job was lost
#   running -> ...          the job's end; the API's cancel (the job stops at its next check);
#                           recovery or the worker when the job's process died (interrupted)
_R = ReconstructionStatus
RECONSTRUCTION_TRANSITIONS: Mapping[ReconstructionStatus, frozenset[ReconstructionStatus]] = (
    MappingProxyType({
        _R.QUEUED: frozenset({_R.RUNNING, _R.CANCELLED, _R.INTERRUPTED}),
        _R.RUNNING: frozenset({_R.COMPLETED, _R.FAILED, _R.CANCELLED, _R.INTERRUPTED}),
        **{ended: frozenset() for ended in (_R.COMPLETED, _R.FAILED, _R.CANCELLED,
                                            _R.INTERRUPTED)},
    }))

TRANSITIONS: Mapping[type[StrEnum], Mapping[Any, frozenset[Any]]] = MappingProxyType({
    ScanStatus: SCAN_TRANSITIONS,
    UploadStatus: UPLOAD_TRANSITIONS,
    SessionStatus: SESSION_TRANSITIONS,
    ReconstructionStatus: RECONSTRUCTION_TRANSITIONS,
})

_SCAN_LABELS: Mapping[ScanStatus, str] = MappingProxyType({
    ScanStatus.QUEUED: "Waiting for the rig…",
    ScanStatus.RUNNING: "Scanning…",
    ScanStatus.PAUSED: "Paused",
    ScanStatus.COMPLETED: "Completed",
    ScanStatus.FAILED: "Failed",
    ScanStatus.CANCELLED: "Cancelled",
    ScanStatus.INTERRUPTED: "Interrupted",
})


def sources_of(target: StrEnum) -> frozenset:
    """The statuses from which `target` may be reached, by its enum's table."""
    table = TRANSITIONS[type(target)]
    return frozenset(status for status, targets in table.items() if target in targets)


def sql_in(column: str, statuses: Iterable[StrEnum]) -> str:
    """`column IN ('a', 'b')`: the literal SQL of a CHECK constraint or index predicate.
    Literal, not bound: a bound parameter in an index predicate breaks ON CONFLICT once
    psycopg 3 prepares the statement server-side."""
    quoted = ", ".join(f"'{status.value}'" for status in statuses)
    return f"{column} IN ({quoted})"


class StatusType(TypeDecorator):
    """A status column: VARCHAR in the database (the schema is unchanged), the enum in Python,
    so a loaded row answers `scan.status.can_pause`. An unknown value raises at once."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[StrEnum], length: int):
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> StrEnum | None:
        return None if value is None else self.enum(value)
