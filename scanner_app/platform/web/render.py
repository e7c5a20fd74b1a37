from __future__ import annotations

from typing import Any

from flask import render_template
from htmx_flask import request

# A rendered page or partial with its status and response headers (e.g. HX-Trigger for htmx).
HtmlWithHeaders = tuple[str, int, dict[str, str]]


def render(area: str, page: str, partial: str | None = None, **context: Any) -> str:
    """Render templates/<area>/<page>.html, or, for an htmx request that targets a part of
    the page, only templates/<area>/partials/_<partial>.html."""
    if partial and request.htmx:
        return render_template(f"{area}/partials/_{partial}.html", **context)
    return render_template(f"{area}/{page}.html", **context)
