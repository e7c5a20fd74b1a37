"""Flask's signed-cookie session, with its signing serializer built once per secret key.

Flask builds a new URLSafeTimedSerializer (and its signer) for every request, to open the
session and again to save it: about a tenth of an API answer on a small machine (issue 15),
even for a request that carries no cookie at all. The serializer depends only on the secret
key(s) and this interface's settings, so it is kept and rebuilt when the key changes.
"""

from __future__ import annotations

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer


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


def init_cookie_session(app: Flask) -> None:
    app.session_interface = KeptSerializerSessionInterface()
