"""Who an API key or a login cookie is, kept per process under the stamp (issue 15): a repeat
looks nothing up, and a revoked key, a logout, a deleted login or a changed admin flag, done
in another process, is seen by the very next request. SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from flask import Flask
from itsdangerous import BadSignature

from scanner_app.accounts.auth import KEYS, LOGINS, SignedIn
from scanner_app.platform.web.cookie_session import KeptSerializerSessionInterface
from tests.support import process_env

PASSWORD = "correct horse battery"


def _elsewhere(data_dir, database_url, body: str) -> None:
    """Run `body` in another process, in the station's app context."""
    script = "from scanner_app import create_app\nfrom scanner_app.config import " \
             "load_settings\napp = create_app(load_settings())\nwith app.app_context():\n" \
             + textwrap.indent(textwrap.dedent(body), "    ")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env=process_env(data_dir, SCANNER_DATABASE_URL=database_url))
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_known_key_is_not_looked_up_again_and_a_revoked_one_is_refused_at_once(
        app, data_dir, database_url):
    with app.app_context():
        from scanner_app.accounts.service import create_api_key
        key, other = create_api_key("script"), create_api_key("other")
    client = app.test_client()

    def status(secret: str) -> int:
        return client.get("/api/v1/sessions", headers={"X-Api-Key": secret}).status_code

    assert status(key) == 200  # its first use is written (last_used_at), a new stamp
    assert status(key) == 200
    builds = KEYS.builds
    assert [status(key) for _ in range(3)] == [200, 200, 200]
    assert KEYS.builds == builds  # kept: no lookup
    assert status("sk_not-a-key") == 401 and status("sk_not-a-key") == 401  # never kept

    _elsewhere(data_dir, database_url, """
        from scanner_app.accounts.service import revoke_api_key
        revoke_api_key("script")
    """)
    assert status(key) == 401
    assert status(other) == 200


def _signed_in(app, name: str, *, admin: bool) -> object:
    with app.app_context():
        from scanner_app.accounts.service import create_user
        create_user(name, PASSWORD, is_admin=admin)
    browser = app.test_client()
    answer = browser.post("/login", data={"name": name, "password": PASSWORD})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return browser


def test_a_login_is_kept_and_a_logout_or_delete_elsewhere_refuses_it_at_once(
        app, data_dir, database_url):
    ada = _signed_in(app, "ada", admin=True)
    bob = _signed_in(app, "bob", admin=True)
    assert ada.get("/").status_code == 200
    builds = LOGINS.builds
    assert [ada.get("/").status_code for _ in range(3)] == [200, 200, 200]
    assert LOGINS.builds == builds  # kept: no lookup
    assert ada.get("/admin").status_code == 200  # an admin page

    # Bob is no longer an admin, in another process: the next request knows.
    _elsewhere(data_dir, database_url, """
        from sqlalchemy import update
        from scanner_app.models import User
        from scanner_app.platform.extensions import db
        db.session.execute(update(User).where(User.name == "bob").values(is_admin=False))
        db.session.commit()
    """)
    assert bob.get("/admin").status_code == 403

    # Ada signed out everywhere (another process): her old cookie no longer signs her in.
    _elsewhere(data_dir, database_url, """
        from sqlalchemy import select
        from scanner_app.accounts.service import end_all_logins
        from scanner_app.models import User
        from scanner_app.platform.extensions import db
        end_all_logins(db.session.scalar(select(User.id).where(User.name == "ada")))
    """)
    assert ada.get("/").status_code == 302
    # Bob deleted (another process): the same.
    assert bob.get("/").status_code == 200
    _elsewhere(data_dir, database_url, """
        from sqlalchemy import delete
        from scanner_app.models import User
        from scanner_app.platform.extensions import db
        db.session.execute(delete(User).where(User.name == "bob"))
        db.session.commit()
    """)
    assert bob.get("/").status_code == 302


def test_the_cookie_serializer_is_built_again_when_the_secret_key_changes():
    app = Flask("keys")
    app.secret_key = "first secret"
    interface = KeptSerializerSessionInterface()
    first = interface.get_signing_serializer(app)
    assert interface.get_signing_serializer(app) is first  # kept
    signed = first.dumps({"_user_id": "1:token"})
    app.secret_key = "second secret"
    second = interface.get_signing_serializer(app)
    assert second is not first
    assert second.loads(second.dumps({"a": 1})) == {"a": 1}
    with pytest.raises(BadSignature):
        second.loads(signed)
    app.config["SECRET_KEY_FALLBACKS"] = ["first secret"]  # a rotated key: old cookies open
    assert interface.get_signing_serializer(app).loads(signed) == {"_user_id": "1:token"}


def test_a_signed_in_person_is_built_from_a_kept_row():
    person = SignedIn(type("Row", (), {"id": 7, "name": "ada", "is_admin": 1,
                                       "session_token": "t"})())
    assert person.get_id() == "7:t" and person.is_admin is True and person.name == "ada"
