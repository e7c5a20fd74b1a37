"""HTTP details through the real server (`scanner web`: gunicorn): every response carries the
security headers, pages say `Vary: HX-Request`, a refused form (no CSRF token) changes
nothing, and after a 413 (or any refusal of a large body it did not read) the server says
`Connection: close` and closes, instead of promising keep-alive and then dropping the
connection under the client's next request."""

from __future__ import annotations

import re
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.client import HTTPResponse
from http.cookiejar import CookieJar

import pytest

from scanner_app.platform.web.security import PAGE_CSP
from tests.runtime.procs import http, upgrade_and_key
from tests.support import Proc, cli, free_port, process_env, run_cli

BOUNDARY = "safetyBoundary"
PASSWORD = "correct horse battery"


class Station:
    def __init__(self, port: int, key: str) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.port, self.key = port, key


@pytest.fixture(scope="module")
def station(tmp_path_factory) -> Iterator[Station]:
    data_dir = tmp_path_factory.mktemp("http-safety") / "data"
    data_dir.mkdir()
    key = upgrade_and_key(data_dir)
    made = run_cli(data_dir, "user", "create", "admin", "--admin", "--password-stdin",
                   input=PASSWORD + "\n")
    assert made.returncode == 0, made.stdout + made.stderr
    port = free_port()
    web = Proc(cli("web", "--port", str(port), "--threads", "2"),
               process_env(data_dir, SCANNER_MAX_UPLOAD_MB="1"))
    try:
        web.wait_line(f"on http://127.0.0.1:{port}/")
        yield Station(port, key)
    finally:
        web.kill()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003 - urllib's signature
        return None


class Browser:
    """Cookies and the page's CSRF token, as a browser keeps them."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(CookieJar()), _NoRedirect())

    def open(self, path: str, data: bytes | None = None, headers: dict | None = None
             ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        try:
            with self.opener.open(request, timeout=10) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def token(self, path: str) -> str:
        _status, _headers, body = self.open(path)
        return re.search(rb'<meta name="csrf-token" content="([^"]+)">', body).group(1).decode()

    def sign_in(self) -> None:
        form = f"name=admin&password={PASSWORD.replace(' ', '+')}&csrf_token="
        status, headers, _ = self.open("/login", (form + self.token("/login")).encode(),
                                       {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 302, (status, headers)


def _assert_safety_headers(headers: dict[str, str], what: str) -> None:
    assert headers.get("Content-Security-Policy"), what
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], what
    assert headers.get("X-Content-Type-Options") == "nosniff", what
    assert headers.get("Referrer-Policy") in ("same-origin", "no-referrer"), what


def test_every_kind_of_response_carries_the_security_headers(station):
    person = Browser(station.url)
    login = person.open("/login")
    assert login[0] == 200
    assert login[1]["Content-Security-Policy"] == PAGE_CSP
    assert "'unsafe-inline'" not in PAGE_CSP and "script-src 'self'" in PAGE_CSP
    answers = {"login page": login, "static file": person.open("/static/station.css"),
               "health check": person.open("/healthz"),
               "anonymous redirect": person.open("/sessions")}
    answers["API"] = http("GET", station.url + "/api/v1/station", key=station.key)
    answers["API error"] = http("GET", station.url + "/api/v1/sessions/999999",
                                key=station.key)
    person.sign_in()
    answers["page"] = person.open("/sessions")
    answers["htmx partial"] = person.open("/sessions", headers={"HX-Request": "true"})
    answers["missing page"] = person.open("/no-such-page")
    for what, (status, headers, _body) in answers.items():
        assert status < 500 or what == "health check", (what, status)  # 503: no Redis here
        _assert_safety_headers(headers, what)
    # A page and its htmx partial share the address: caches must keep them apart.
    for what in ("page", "htmx partial", "anonymous redirect"):
        assert "HX-Request" in answers[what][1].get("Vary", ""), what
    assert answers["page"][2] != answers["htmx partial"][2]


def test_a_form_without_the_token_changes_nothing(station):
    person = Browser(station.url)
    person.sign_in()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    refused = person.open("/sessions", b"name=Forged", form)
    assert refused[0] == 400 and b"Reload the page and try again" in refused[2]
    made = person.open("/sessions", b"name=Honest&csrf_token=" + person.token(
        "/sessions").encode(), form)
    assert made[0] in (200, 201, 303), made
    _status, _headers, body = http("GET", station.url + "/api/v1/sessions", key=station.key)
    assert b"Honest" in body and b"Forged" not in body


def _upload_request(port: int, key: str, size: int) -> bytes:
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"big.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").encode()
    body += b"\xff" * size + f"\r\n--{BOUNDARY}--\r\n".encode()
    head = (f"POST /api/v1/uploads HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Api-Key: {key}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head + body


@pytest.mark.parametrize("size_kb, key, status", [
    (1536, True, 413),  # 1.5 MB against a 1 MB limit: far more than gunicorn drains (64 KB)
    (512, False, 401),  # within the limit, but refused unread: no key
])
def test_a_refused_body_says_connection_close_and_closes(station, size_kb, key, status):
    request = _upload_request(station.port, station.key if key else "sk_wrong", size_kb * 1024)
    with socket.create_connection(("127.0.0.1", station.port), timeout=10) as sock:
        try:
            sock.sendall(request)
        except OSError:
            pass  # the server may answer and close before it took the whole body
        response = HTTPResponse(sock)
        response.begin()
        body = response.read()
        assert response.status == status, body
        assert b'"too_large"' in body or status != 413
        assert response.getheader("Connection", "").lower() == "close"
        # ...and it does close: no next request can be lost on this connection.
        try:
            rest = sock.recv(1024)
        except ConnectionResetError:
            rest = b""
        assert rest == b""
    assert Browser(station.url).open("/login")[0] == 200  # the server itself is fine

