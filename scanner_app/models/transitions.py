"""The one way a status changes: a conditional UPDATE that the tables in models/statuses.py
allow. The database decides races: of two processes changing the same row, the one whose
UPDATE still finds the row in an allowed status wins, the other gets False.

No function here commits: the caller owns its transaction (and commits, or batches several).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, update

from scanner_app.models.statuses import StatusType, sources_of
from scanner_app.platform.extensions import db


def _status_enum(model: type) -> type[StrEnum]:
    column_type = model.__table__.c.status.type
    if not isinstance(column_type, StatusType):
        raise TypeError(f"{model.__name__}.status is not a status column")
    return column_type.enum


def _update(model: type, row_id: int, statuses: Iterable[StrEnum],
            where: Iterable[ColumnElement[bool]], values: dict[str, Any]) -> bool:
    result = db.session.execute(
        update(model)
        .where(model.id == row_id, model.status.in_(sorted(statuses)), *where)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def transition(model: type, row_id: int, to: StrEnum, *,
               from_: StrEnum | Iterable[StrEnum] | None = None,
               where: Iterable[ColumnElement[bool]] = (), **values: Any) -> bool:
    """UPDATE model SET status=to, **values WHERE id=row_id AND status IN (sources) [AND
    where]; True when the row changed. The sources are the statuses the table allows `to`
    from, narrowed to `from_` when given. Asking for a change the table never allows is a
    bug in the caller: ValueError."""
    enum = _status_enum(model)
    to = enum(to)
    allowed = sources_of(to)
    if from_ is not None:
        wanted = {enum(from_)} if isinstance(from_, str) else {enum(s) for s in from_}
        allowed = allowed & wanted
    if not allowed:
        raise ValueError(f"{model.__name__}: no allowed transition to {to.value!r}"
                         + (f" from {sorted(s.value for s in wanted)}" if from_ else ""))
    return _update(model, row_id, allowed, where, {**values, "status": to})


def transition_where(model: type, to: StrEnum, *, from_: StrEnum | Iterable[StrEnum],
                     where: Iterable[ColumnElement[bool]], **values: Any) -> list[int]:
    """`transition` for every row matching `where` at once, in one statement (e.g. every
    idle auto session of an earlier day); the ids of the rows that changed. The same table
    decides: only rows in an allowed source status change."""
    enum = _status_enum(model)
    to = enum(to)
    wanted = {enum(from_)} if isinstance(from_, str) else {enum(s) for s in from_}
    allowed = sources_of(to) & wanted
    if not allowed:
        raise ValueError(f"{model.__name__}: no allowed transition to {to.value!r} from "
                         f"{sorted(s.value for s in wanted)}")
    result = db.session.execute(
        update(model)
        .where(model.status.in_(sorted(allowed)), *where)
        .values(**values, status=to)
        .returning(model.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(result.scalars())


def update_while(model: type, row_id: int, statuses: StrEnum | Iterable[StrEnum], *,
                 where: Iterable[ColumnElement[bool]] = (), **values: Any) -> bool:
    """UPDATE model SET **values WHERE id=row_id AND status IN (statuses) [AND where], the
    status left as it is (a request to the job, a sign of life); True when the row changed.
    Status changes go through `transition`."""
    if "status" in values:
        raise ValueError("update_while never changes a status; use transition()")
    enum = _status_enum(model)
    wanted = {enum(statuses)} if isinstance(statuses, str) else {enum(s) for s in statuses}
    return _update(model, row_id, wanted, where, values)
