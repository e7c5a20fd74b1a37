"""`?page=N&per_page=M` of every list of the API, the page fields of its answer, and the rows
of one page read by key (page_rows) rather than by walking OFFSET over whole rows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import request
from sqlalchemy import select

from scanner_app.platform.errors import BadRequest
from scanner_app.platform.extensions import db
from scanner_app.platform.web.converters import MAX_ID, parse_id

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200


@dataclass(frozen=True)
class Page:
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    def fields(self, *, with_total: bool = True) -> dict[str, int]:
        """The page fields of a list answer."""
        shown = {"page": self.page, "pages": self.pages, "per_page": self.per_page}
        return {**shown, "total": self.total} if with_total else shown


def _whole(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    number = parse_id(raw, maximum=MAX_ID)
    if number is None:
        raise BadRequest(f"'{name}' must be a whole number from 1.", code="invalid_page")
    return number


def requested_page(default_per_page: int = DEFAULT_PER_PAGE,
                   max_per_page: int = MAX_PER_PAGE) -> tuple[int, int]:
    """(page, per_page) asked for; per_page above the maximum is read as the maximum."""
    return _whole("page", 1), min(_whole("per_page", default_per_page), max_per_page)


def page_of(total: int, page: int, per_page: int) -> Page:
    """The page to show: a page past the last one shows the last one (as the UI does)."""
    last = max(1, math.ceil(total / per_page))
    return Page(page=min(page, last), per_page=per_page, total=total)


def page_rows(model: Any, where: Sequence[Any], order: Sequence[Any], reverse: Sequence[Any],
              shown: Page) -> list:
    """The rows of `model` on the page `shown` (its total known beforehand, e.g. from
    counters: no COUNT here), in `order`; `reverse` is the same order backwards.

    The page's ids are found in an index alone (`order` must be what an index holds after the
    `where` columns, ending in the primary key), walked from whichever end of the list the
    page is nearer, so the last page costs what the first does; then only those rows are
    read (by primary key)."""
    start, size = shown.offset, shown.per_page
    if start >= shown.total:
        return []
    ids = select(model.id).where(*where)
    if start + size / 2 <= shown.total / 2:
        ids = ids.order_by(*order).offset(start).limit(size)
    else:  # nearer the end: count back from the last row
        ids = ids.order_by(*reverse).offset(max(0, shown.total - start - size))
        ids = ids.limit(min(size, shown.total - start))
    rows = db.session.scalars(
        select(model).where(model.id.in_(ids.scalar_subquery())).order_by(*order)
    )
    return list(rows)
