"""Ids from URLs, forms and JSON: ASCII digits only and within the database's integer range.

Werkzeug's `int` converter matches `\\d`, which takes full-width and other Unicode digits
("１２"), and accepts any size: 2**63 overflows SQLite's and 2**31 PostgreSQL's INTEGER,
which turned into 500s. Every id column is INTEGER, so ids above 2**31 - 1 can exist on
neither database: such a URL is simply not found (404).
"""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import BaseConverter, ValidationError

MAX_ID = 2**31 - 1  # PostgreSQL INTEGER; SQLite's range is wider, so this bounds both


def parse_id(raw: object, *, minimum: int = 1, maximum: int | None = MAX_ID) -> int | None:
    """An int from an int or ASCII digits, in [minimum, maximum] (no upper bound when
    maximum is None), else None. A sign, spaces inside and Unicode digits are not ids;
    over 4300 digits is not either (int() refuses those)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and 0 < len(raw) <= 4000 and raw.isascii() and raw.isdigit():
        value = int(raw)  # leading zeros allowed: "007" is 7
    else:
        return None
    if value < minimum or (maximum is not None and value > maximum):
        return None
    return value


def _at_most(limit: int) -> str:
    """A regex of the decimal numbers 0..limit (leading zeros allowed). The bound must be in
    the pattern, not only in to_python: Werkzeug answers 405, not 404, when a URL matches a
    rule's pattern for another method and this method's rule refuses the value."""
    digits = str(limit)
    options = [f"[0-9]{{1,{len(digits) - 1}}}"] if len(digits) > 1 else []
    for i, digit in enumerate(digits):
        low = "1" if i == 0 else "0"
        if digit > low:
            below = f"[{low}-{int(digit) - 1}]"
            options.append(digits[:i] + below + f"[0-9]{{{len(digits) - i - 1}}}")
    options.append(digits)
    return "0*(?:" + "|".join(options) + ")"


class IdConverter(BaseConverter):
    """`<int:name>` in every route: ASCII digits, 0 to MAX_ID; anything else is a 404."""

    regex = _at_most(MAX_ID)
    weight = 50
    part_isolating = True

    def to_python(self, value: str) -> int:
        number = parse_id(value, minimum=0)
        if number is None:
            raise ValidationError()
        return number

    def to_url(self, value: int) -> str:
        return str(int(value))


def init_converters(app: Flask) -> None:
    """Must run before any blueprint is registered: rules bind their converter when added."""
    app.url_map.converters["int"] = IdConverter
