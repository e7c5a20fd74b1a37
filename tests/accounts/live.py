"""A live `scanner web` (gunicorn, one gthread worker) for the login tests, and a browser-like
HTTP client: a cookie jar, and the CSRF token of the page it was on, as a person's browser
sends it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.conftest import build_app
from tests.support import Proc, cli, dispose, free_port, process_env, stop_processes, wait_until

META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


@dataclass
class LiveWeb:
    app: object  # the test's own app on the same database, for looking at rows
    base: str


@contextmanager
def live_web(data_dir: Path, database_url: str | None, threads: int = 4) -> Iterator[LiveWeb]:
    app = build_app(data_dir, database_url)  # migrated
    extra = {"SCANNER_DATABASE_URL": database_url} if database_url else {}
    port = free_port()
    web = Proc(cli("web", "--port", str(port), "--threads", str(threads)),
               process_env(data_dir, **extra))
    try:
        web.wait_line(f"http://127.0.0.1:{port}/", timeout=30)
        base = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            try:
                return requests.get(base + "/login", timeout=2, allow_redirects=False
                                    ).status_code < 500
            except requests.RequestException:
                return False

        wait_until(answers, 30, "the web server to answer")
        yield LiveWeb(app, base)
    finally:
        stop_processes(web.popen)
        dispose(app)


class Browser:
    """One person's browser: its own cookies; forms carry the token of the page they are on."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()

    def get(self, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("allow_redirects", False)
        return self.http.get(self.base + path, timeout=30, **kwargs)

    def token(self, page: str = "/login") -> str:
        answer = self.http.get(self.base + page, timeout=30)  # redirects followed
        found = META.search(answer.text)
        assert found, f"no CSRF token on {answer.url} ({answer.status_code})"
        return found.group(1)

    def post(self, path: str, data: dict, page: str = "/login",
             token: str | None = None) -> requests.Response:
        form = {**data, "csrf_token": token or self.token(page)}
        return self.http.post(self.base + path, data=form, timeout=60, allow_redirects=False)

    def sign_in(self, name: str, password: str, next_path: str | None = None
                ) -> requests.Response:
        form = {"name": name, "password": password}
        if next_path is not None:
            form["next"] = next_path
        return self.post("/login", form)
