from __future__ import annotations

from flask import render_template
from htmx_flask import request


def render(area: str, page: str, partial: str | None = None, **context) -> str:
    """Render templates/<area>/<page>.html, or, for an htmx request that targets a part of
    the page, only templates/<area>/partials/_<partial>.html."""
    if partial and request.htmx:
        return render_template(f"{area}/partials/_{partial}.html", **context)
    return render_template(f"{area}/{page}.html", **context)
