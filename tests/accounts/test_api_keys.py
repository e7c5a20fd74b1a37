"""Issue 9, finding 5: API keys can be listed and revoked (CLI and an admin page), and logins
listed, created and deleted there. A revoked key stops working at once; the key itself is
shown once, when it is made, and never again."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from scanner_app.models import ApiKey, User
from scanner_app.platform.clock import utcnow
from scanner_app.platform.extensions import db
from tests.support import run_cli

PASSWORD = "correct horse battery"
KEY = re.compile(r"sk_[A-Za-z0-9_-]{20,}")


@pytest.fixture
def database_url(tmp_path) -> str:
    # Keys and logins are plain rows; the hostile-input tests cover both databases.
    return f"sqlite:///{tmp_path / 'data' / 'scanner.db'}"


def create_key(data_dir, name: str) -> str:
    made = run_cli(data_dir, "apikey", "create", name)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[-1].split()[-1]


def answers_with(app, key: str) -> int:
    return app.test_client().get("/api/v1/sessions", headers={"X-Api-Key": key}).status_code


def test_cli_lists_keys_without_the_keys_and_revokes_by_name_or_id(app, data_dir):
    scanner = create_key(data_dir, "turntable-script")
    backup = create_key(data_dir, "backup job")
    assert answers_with(app, scanner) == 200  # a use, recorded as last used
    with app.app_context():
        backup_id = db.session.scalar(select(ApiKey.id).where(ApiKey.name == "backup job"))
        key_hashes = db.session.scalars(select(ApiKey.key_hash)).all()

    listed = run_cli(data_dir, "apikey", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.strip().splitlines()
    assert lines[0].split() == ["ID", "NAME", "CREATED", "(UTC)", "LAST", "USED", "(UTC)"]
    row = {line.split()[1]: line for line in lines[1:]}
    today = utcnow().strftime("%Y-%m-%d")
    assert today in row["turntable-script"] and row["turntable-script"].count(today) == 2
    assert row["backup"].rstrip().endswith("never") and str(backup_id) in row["backup"]
    for secret in (scanner, backup, *key_hashes):
        assert secret not in listed.stdout

    by_name = run_cli(data_dir, "apikey", "revoke", "turntable-script")
    assert by_name.returncode == 0 and "Revoked API key 'turntable-script'" in by_name.stdout
    assert answers_with(app, scanner) == 401
    assert answers_with(app, backup) == 200
    by_id = run_cli(data_dir, "apikey", "revoke", str(backup_id))
    assert by_id.returncode == 0, by_id.stderr
    assert answers_with(app, backup) == 401
    assert "No API keys" in run_cli(data_dir, "apikey", "list").stdout


def test_cli_revoke_of_an_unknown_or_ambiguous_name_is_a_sentence(app, data_dir):
    first = create_key(data_dir, "shared")
    create_key(data_dir, "shared")
    unknown = run_cli(data_dir, "apikey", "revoke", "nope")
    assert unknown.returncode != 0 and "There is no API key 'nope'" in unknown.stderr
    twice = run_cli(data_dir, "apikey", "revoke", "shared")
    assert twice.returncode != 0 and "2 keys are named 'shared'" in twice.stderr
    for done in (unknown, twice):
        assert "Traceback" not in done.stderr
    assert answers_with(app, first) == 200  # nothing was revoked


def admin_browser(app, name: str = "root"):
    from scanner_app.accounts.service import create_user

    with app.app_context():
        create_user(name, PASSWORD, is_admin=True)
    browser = app.test_client()
    assert browser.post("/login", data={"name": name, "password": PASSWORD}
                        ).status_code == 302
    return browser


def test_admin_page_creates_a_key_shown_once_lists_and_revokes_it(app):
    browser = admin_browser(app)
    made = browser.post("/admin/keys", data={"name": "camera script"})
    assert made.status_code == 201 and made.headers["Cache-Control"] == "no-store"
    [key] = KEY.findall(made.get_data(as_text=True))
    assert answers_with(app, key) == 200

    with app.app_context():  # a use older than the last-used resolution shows its time
        db.session.execute(update(ApiKey).values(last_used_at=utcnow() - timedelta(hours=1)))
        db.session.commit()
        key_id = db.session.scalar(select(ApiKey.id))
    page = browser.get("/admin").get_data(as_text=True)
    assert "camera script" in page and key not in page and not KEY.search(page)
    assert "never" not in page.split("camera script", 1)[1].split("</tr>", 1)[0]

    revoked = browser.post(f"/admin/keys/{key_id}/revoke")
    assert revoked.status_code == 303
    assert "Revoked the key" in browser.get("/admin").get_data(as_text=True)
    assert answers_with(app, key) == 401
    gone = browser.post(f"/admin/keys/{key_id}/revoke")
    assert gone.status_code == 404 and "no such API key" in gone.get_data(as_text=True)


def test_admin_page_lists_creates_and_deletes_logins(app):
    browser = admin_browser(app)
    made = browser.post("/admin/users", data={"name": "maker", "password": PASSWORD})
    assert made.status_code == 303
    page = browser.get("/admin").get_data(as_text=True)
    assert "Created the login" in page and "maker" in page

    other = app.test_client()
    assert other.post("/login", data={"name": "maker", "password": PASSWORD}
                      ).status_code == 302
    assert other.get("/").status_code == 200

    short = browser.post("/admin/users", data={"name": "x", "password": "short"})
    assert short.status_code == 400 and "at least 8 characters" in short.get_data(as_text=True)
    taken = browser.post("/admin/users", data={"name": "maker", "password": PASSWORD})
    assert taken.status_code == 409

    with app.app_context():
        maker_id = db.session.scalar(select(User.id).where(User.name == "maker"))
        root_id = db.session.scalar(select(User.id).where(User.name == "root"))
    assert browser.post(f"/admin/users/{maker_id}/delete").status_code == 303
    assert other.get("/").status_code == 302  # a deleted login's cookie signs no one in
    own = browser.post(f"/admin/users/{root_id}/delete")
    assert own.status_code == 409 and "your own login" in own.get_data(as_text=True)


def test_the_last_admin_cannot_be_deleted(app):
    from scanner_app.accounts.service import create_user, delete_user
    from scanner_app.platform.errors import Conflict

    with app.app_context():
        only = create_user("root", PASSWORD, is_admin=True)
        helper = create_user("helper", PASSWORD)
        with pytest.raises(Conflict, match="last admin"):
            delete_user(only.id, acting_user_id=helper.id)
