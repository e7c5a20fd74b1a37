"""What every response of the station carries for safety on a shared network, and the CSRF
check of every state-changing browser request.

- Headers: a Content-Security-Policy that allows only the station's own files (no inline
  script or style), no framing, nosniff, a same-origin Referrer-Policy, and `Vary: HX-Request`
  because pages answer htmx with a partial and a browser with the whole page.
- CSRF: Flask-WTF's CSRFProtect. Its automatic check is switched off and run here instead,
  after scanner_app.accounts.auth has authenticated the request, so a request with a valid
  X-Api-Key (which a foreign page cannot send) is exempt. Multipart bodies are the upload
  intake's to stream: their token is read from the header (htmx sends it from <body
  hx-headers>) or the query string, never by parsing the body first.
- After a 413, or an error to a large body, the connection is closed
  (see close_after_refused_body).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, current_app, g, request
from flask_wtf.csrf import CSRFError, CSRFProtect, same_origin, validate_csrf
from wtforms import ValidationError

from scanner_app.platform.errors import error_response

csrf = CSRFProtect()

# The one <style> the vendored <model-viewer> 4.4.0 puts in its shadow root (its layout),
# allowed by its hash only (static/vendor/model-viewer; tests/reconstruction's browser test
# fails if an upgrade changes it).
MODEL_VIEWER_STYLE = "'sha256-PXtZZkJMMyc18o/DN1ZEFOJ2qEGq95IQbVaJFMOXOb0='"
# Only the station's own files; no inline script or style, no plugins, no framing.
PAGE_CSP = ("default-src 'self'; script-src 'self'; "
            f"style-src 'self' {MODEL_VIEWER_STYLE}; img-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# A page that loads <model-viewer> compiles its bundled WebAssembly (meshopt) decoder as it
# loads; such a page asks for it with allow_webassembly() (a template global), and gets
# 'wasm-unsafe-eval' (WebAssembly only: JavaScript eval stays refused).
PAGE_CSP_WASM = PAGE_CSP.replace("script-src 'self';", "script-src 'self' 'wasm-unsafe-eval';")
# For stored files: nothing in them may run or load anything, even when opened directly.
FILE_CSP = "sandbox; default-src 'none'; frame-ancestors 'none'"

CSRF_MESSAGE = ("This form has expired or came from another site. Reload the page and "
                "try again.")
CSRF_FIELD = "csrf_token"


def init_security(app: Flask) -> None:
    """Register the CSRF check (after the login check) and the response headers. Call it
    after scanner_app.accounts.auth.init_auth."""
    # A token lives as long as the login: the dashboard stays open on a station for days.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # run by _check_csrf, after auth
    csrf.init_app(app)
    app.before_request(_check_csrf)
    app.after_request(_security_headers)
    app.add_template_global(allow_webassembly)
    app.register_error_handler(CSRFError, _csrf_refused)
    app.wsgi_app = close_after_refused_body(app.wsgi_app)  # type: ignore[method-assign]


def allow_webassembly() -> str:
    """For a template that loads <model-viewer>: this response's CSP lets the page compile
    WebAssembly. Returns "" so the template can call it where it loads the script."""
    g.csp_webassembly = True
    return ""


def _check_csrf() -> None:
    if not current_app.config.get("WTF_CSRF_ENABLED", True):
        return
    if request.method not in current_app.config["WTF_CSRF_METHODS"]:
        return
    if request.routing_exception is not None:  # 404/405: nothing will be done
        return
    if g.get("api_key") is not None:  # set by accounts.auth only for a valid key
        return
    if request.mimetype != "multipart/form-data":
        csrf.protect()
        return
    token = next((request.headers[name] for name in current_app.config["WTF_CSRF_HEADERS"]
                  if request.headers.get(name)), None) or request.args.get(CSRF_FIELD)
    try:
        validate_csrf(token)
    except ValidationError as exc:
        raise CSRFError(exc.args[0]) from exc
    if request.is_secure and current_app.config["WTF_CSRF_SSL_STRICT"]:
        # As csrf.protect() does over HTTPS: the form must come from this very host.
        if not same_origin(request.referrer or "", f"https://{request.host}/"):
            raise CSRFError("The referrer does not match the host.")
    g.csrf_valid = True


def _csrf_refused(exc: CSRFError) -> tuple[Response | str, int]:
    current_app.logger.info("CSRF refused %s %s: %s", request.method, request.path,
                            exc.description)
    return error_response(400, "csrf_failed", CSRF_MESSAGE)


# Added to every response unless it set its own (file responses and the job dashboard set
# their own policy). Lower-case names: they are compared with what the response has.
_FIXED_HEADERS = (("x-content-type-options", "X-Content-Type-Options", "nosniff"),
                  ("x-frame-options", "X-Frame-Options", "DENY"),
                  ("referrer-policy", "Referrer-Policy", "same-origin"))


def _security_headers(response: Response) -> Response:
    # One pass over the response's headers, and constant values appended as they are: four
    # setdefault() calls and the parsed Vary set cost a tenth of an API answer (issue 15).
    headers = response.headers
    present = {name.lower() for name, _ in headers.items()}
    if "content-security-policy" not in present:
        headers.add("Content-Security-Policy",
                    PAGE_CSP_WASM if g.get("csp_webassembly") else PAGE_CSP)
    for lowered, name, value in _FIXED_HEADERS:
        if lowered not in present:
            headers.add(name, value)
    if request.endpoint != "static":
        # A page and its htmx partial share a URL; caches must keep them apart.
        if "vary" not in present:
            headers.add("Vary", "HX-Request")
        else:
            response.vary.add("HX-Request")
    return response


WSGIApp = Callable[[dict, Callable], Iterable[bytes]]
# What gunicorn drains of an unread body before it gives up on the connection.
LARGE_BODY_BYTES = 64 * 1024


def close_after_refused_body(app: WSGIApp) -> WSGIApp:
    """After a 413, or any error answer to a request with a large body, the body was not read,
    and the server cannot reuse the connection: under gunicorn it drains a little (64 KB),
    then drops the socket while its headers had said `keep-alive`, so the client's next
    request on it fails. An application may not send hop-by-hop headers itself (PEP 3333),
    and gunicorn ignores them, so this asks gunicorn's response object (the owner of
    `start_response`) to close, which makes it say `Connection: close`. Other servers are left
    as they are."""

    def wrapped(environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        large = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower() or (
            environ.get("CONTENT_LENGTH", "").isdigit()
            and int(environ["CONTENT_LENGTH"]) > LARGE_BODY_BYTES)

        def start(status: str, headers: list, exc_info: Any = None) -> Any:
            if status.startswith("413") or (large and status[:1] in ("4", "5")):
                force_close = getattr(getattr(start_response, "__self__", None),
                                      "force_close", None)
                if callable(force_close):
                    force_close()
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return wrapped
