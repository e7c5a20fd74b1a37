"""`?page=N&per_page=M` of every list of the API, and the page fields of its answer."""

from __future__ import annotations

import math
from dataclasses import dataclass

from flask import request

from scanner_app.platform.errors import BadRequest
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
