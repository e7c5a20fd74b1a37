"""A processing worker's line to the station it works for, over the station's HTTP API only
(reconstruction/remote_api.py): no shared disk, no database. Set by `scanner worker
--station URL --api-key KEY` (or SCANNER_STATION_URL and SCANNER_STATION_API_KEY)."""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

URL_ENV = "SCANNER_STATION_URL"
KEY_ENV = "SCANNER_STATION_API_KEY"
TIMEOUT = 60.0


class StationRefused(Exception):
    """The station answered 404 or 409: the reconstruction is gone or no longer running (or
    was taken by another worker). The worker stops working on it."""


class StationUnreachable(Exception):
    """No answer, or an answer the worker cannot act on; the text says which."""


class StationLink:
    def __init__(self, url: str, api_key: str, timeout: float = TIMEOUT):
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def _open(self, method: str, path: str, data: Any = None,
              content_type: str = "application/json", length: int | None = None):
        headers = {"X-Api-Key": self.api_key, "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
            if length is not None:
                headers["Content-Length"] = str(length)
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers=headers)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)  # noqa: S310
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read())["error"]["message"]
            except (ValueError, KeyError, TypeError, OSError):
                message = exc.reason
            if exc.code in (404, 409):
                raise StationRefused(message) from None
            raise StationUnreachable(f"The station answered {exc.code} to {method} {path}: "
                                     f"{message}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise StationUnreachable(f"The station at {self.url} did not answer ({exc}). "
                                     "Check the address and that it is running.") from None

    def _json(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body if body is not None else {}).encode()
        with self._open(method, path, data) as answer:
            return json.loads(answer.read() or b"{}")

    # --- what the worker asks --------------------------------------------------------
    def check(self) -> None:
        """Raise StationUnreachable (with a sentence) unless the station answers the key."""
        try:
            with self._open("GET", "/api/v1/sessions/current"):
                return
        except StationRefused as exc:
            raise StationUnreachable(str(exc)) from None

    def claim(self, rid: int) -> dict:
        return self._json("POST", f"/api/v1/reconstructions/{int(rid)}/claim")["reconstruction"]

    def progress(self, rid: int, **fields: Any) -> dict:
        return self._json("POST", f"/api/v1/reconstructions/{int(rid)}/progress",
                          fields)["reconstruction"]

    def download_inputs(self, rid: int, dest: Path) -> None:
        with self._open("GET", f"/api/v1/reconstructions/{int(rid)}/inputs.zip") as answer, \
                open(dest, "wb") as out:
            shutil.copyfileobj(answer, out, 1024 * 1024)

    def upload(self, rid: int, name: str, path: Path) -> None:
        quoted = urllib.parse.quote(name, safe="/")
        with open(path, "rb") as body, self._open(
                "PUT", f"/api/v1/reconstructions/{int(rid)}/outputs/{quoted}", body,
                content_type="application/octet-stream", length=path.stat().st_size):
            pass

    def finish(self, rid: int, body: dict) -> dict:
        return self._json("POST", f"/api/v1/reconstructions/{int(rid)}/finish",
                          body)["reconstruction"]


def from_environment() -> StationLink | None:
    """The link this process was started with, or None (a worker on the station itself)."""
    url = os.environ.get(URL_ENV, "").strip()
    if not url:
        return None
    return StationLink(url, os.environ.get(KEY_ENV, "").strip())
