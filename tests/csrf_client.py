"""A Flask test client that sends forms the way a person's browser does: with the CSRF token
of the page it came from. CSRF stays on in the tests; this client only saves each test from
fetching the token itself. It reads the token from a real page's
<meta name="csrf-token">, so a template that lost the tag fails here too.

A request that already carries X-Api-Key, an X-CSRFToken header (even an empty one) or a
csrf_token form field is sent as it is, so tests about refusals stay in charge."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

META = re.compile(rb'<meta name="csrf-token" content="([^"]+)">')
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# The login page (or, before the first login exists, the first-run page it sends to): it
# renders for anyone, signed in or not, extends base.html and changes nothing on GET.
PROBE = "/login"


def csrf_token_of(client: FlaskClient) -> str:
    """The CSRF token of the client's current browser session, read from a page."""
    page = client.get(PROBE, follow_redirects=True, headers={"Accept": "text/html"})
    found = META.search(page.data)
    assert found, f"no csrf-token meta tag on {page.request.path} ({page.status_code})"
    return found.group(1).decode()


def _names(headers: Any) -> set[str]:
    if headers is None:
        return set()
    items = headers.items() if hasattr(headers, "items") else headers
    return {str(name).lower() for name, _value in items}


class CsrfClient(FlaskClient):
    def open(self, *args: Any, **kwargs: Any) -> Any:
        method = str(kwargs.get("method", "GET")).upper()
        if method in UNSAFE and not self._carries_credentials(kwargs):
            headers = kwargs.get("headers")
            extra = [("X-CSRFToken", csrf_token_of(self))]
            if headers is None:
                kwargs["headers"] = extra
            elif hasattr(headers, "items"):
                kwargs["headers"] = [*headers.items(), *extra]
            else:
                kwargs["headers"] = [*headers, *extra]
        return super().open(*args, **kwargs)

    def _carries_credentials(self, kwargs: dict[str, Any]) -> bool:
        names = _names(kwargs.get("headers"))
        if {"x-api-key", "x-csrftoken"} & names or {
                "HTTP_X_API_KEY", "HTTP_X_CSRFTOKEN"} & set(self.environ_base):
            return True
        data = kwargs.get("data")
        return isinstance(data, dict) and "csrf_token" in data
