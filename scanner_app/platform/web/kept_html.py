"""HTML kept between requests (platform/web/response_cache.py) is served to whoever asks
next, so it must hold no one's data. Its CSRF tokens are rendered as a placeholder
(render_for_anyone) and each answer puts in the asker's own (with_askers_csrf).

Kept parts may be nested (the dashboard keeps its whole page, built from its kept cards):
while a page is rendered for anyone, with_askers_csrf leaves the placeholder in, and any real
token that still got in (a template calling generate_csrf some other way) is put back to the
placeholder before the HTML is kept.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import g, render_template
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

# Stands for the CSRF token in kept HTML; random per process, so no page can contain it.
CSRF_MARK = "csrf" + secrets.token_hex(16)
_META = Markup('<meta name="csrf-token" content="{}">').format(CSRF_MARK)
_FOR_ANYONE = "kept_html_for_anyone"  # in flask.g while rendering for anyone


@contextmanager
def for_anyone() -> Iterator[None]:
    """Within: kept parts keep their placeholder (with_askers_csrf leaves it in)."""
    before = g.get(_FOR_ANYONE, False)
    setattr(g, _FOR_ANYONE, True)
    try:
        yield
    finally:
        setattr(g, _FOR_ANYONE, before)


def render_for_anyone(template: str, **context: Any) -> str:
    """`template` rendered with the CSRF placeholder: HTML that may be kept and served to
    anyone, once with_askers_csrf has put in the asker's token."""
    with for_anyone():
        html = render_template(template, csrf_token=lambda: CSRF_MARK,
                               csrf_meta_tag=lambda: _META, **context)
    own = g.get("csrf_token")  # Flask-WTF's token of this request, if anything made one
    return html.replace(own, CSRF_MARK) if own else html


def with_askers_csrf(html: str) -> Markup:
    """Kept HTML (ours, from render_for_anyone) with this request's asker's CSRF token; left
    as it is while rendering for anyone."""
    if g.get(_FOR_ANYONE):
        return Markup(html)  # noqa: S704 - our own render
    return Markup(html.replace(CSRF_MARK, generate_csrf()))  # noqa: S704 - our own render


_LIVE = "kept_html_live"  # in flask.g: a part of the page being rendered changes with time


def changes_with_time() -> None:
    """Called by a part of a page that shows more than the stamped tables (a running scan's
    heartbeat and progress): the page it is rendered into must not be kept."""
    setattr(g, _LIVE, True)


def render_page_for_anyone(template: str, **context: Any) -> tuple[str, bool]:
    """render_for_anyone, and whether the page may be kept (no part changes with time)."""
    before = g.get(_LIVE, False)
    setattr(g, _LIVE, False)
    try:
        html = render_for_anyone(template, **context)
        return html, not g.get(_LIVE)
    finally:
        setattr(g, _LIVE, before or g.get(_LIVE))
