"""Flask's signed-cookie session, with its signing serializer built once per secret key, and
none at all for requests that carry an X-Api-Key.

Flask builds a new URLSafeTimedSerializer (and its signer) for every request, to open the
session and again to save it: about a tenth of an API answer on a small machine (issue 15),
even for a request that carries no cookie at all. The serializer depends only on the secret
key(s) and this interface's settings, so it is kept and rebuilt when the key changes.

A request with an X-Api-Key is a script's: the key says who it is (accounts/auth.py), it is
exempt from CSRF, and it keeps no cookies. Its session starts empty whatever cookie it sends
and is never saved, so answering it signs and sends no cookie (a page's forms still get a
token, which such a client has no use for).
"""

from __future__ import annotations

from flask import Flask, Request, Response
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

API_KEY_HEADER = "X-Api-Key"


class KeyRequestSession(SecureCookieSession):
    """The session of a request with an X-Api-Key: starts empty, never saved."""


class KeptSerializerSessionInterface(SecureCookieSessionInterface):
    def __init__(self) -> None:
        # (what it was built from, the serializer), replaced whole: threads read it unlocked.
        self._kept: tuple[tuple, URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        # Everything the serializer is built from: a changed key or fallback builds anew.
        identity = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        kept = self._kept
        if kept is not None and kept[0] == identity:
            return kept[1]
        serializer = super().get_signing_serializer(app)
        self._kept = (identity, serializer)
        return serializer

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.headers.get(API_KEY_HEADER):
            return KeyRequestSession()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SecureCookieSession,
                     response: Response) -> None:
        if isinstance(session, KeyRequestSession):
            return
        super().save_session(app, session, response)


def init_cookie_session(app: Flask) -> None:
    app.session_interface = KeptSerializerSessionInterface()
