"""Issue 9, finding 6: hostile session names, on SQLite and PostgreSQL. A NUL gave 500 on
PostgreSQL; names of invisible characters, right-to-left overrides and look-alikes of an
automatic session's name were taken; "alpha" and "Alpha" were two names."""

from __future__ import annotations

import unicodedata

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from scanner_app.platform.extensions import db
from scanner_app.sessions import names


def create(client, name):
    return client.post("/api/v1/sessions", json={"name": name, "make_current": False})


def session_of(answer) -> dict:
    """The Session of an answer, bare or wrapped ({"session": ...}): both are the contract."""
    body = answer.get_json()
    return body.get("session", body)


def refused(answer, status: int, code: str) -> str:
    assert answer.status_code == status, answer.get_data(as_text=True)
    error = answer.get_json()["error"]
    assert error["code"] == code and error["message"].endswith("."), error
    return error["message"]


@pytest.mark.parametrize("name", [
    "Trial\x00ABC", "\x00", "Trial\x1b[31m red", "bell\x07", "Trial\x7f", "a\x85b",
])
def test_control_characters_are_refused_with_a_sentence(client, name):
    message = refused(create(client, name), 400, "invalid_name")
    assert "control characters" in message


def test_a_lone_surrogate_is_refused(client):
    answer = client.post("/api/v1/sessions", data=b'{"name": "Trial \\ud800"}',
                         content_type="application/json")
    refused(answer, 400, "invalid_name")


@pytest.mark.parametrize("name", [
    "\u200b", "\u200b\u200c\u200d\u2060", "\u202e\u202c", "\ufeff", " \u00ad ", "\u2066\u2069",
    "\u3164", "\ufe0f", "\t\n",
])
def test_names_made_only_of_invisible_characters_are_blank(client, name):
    assert "Give the session a name" in refused(create(client, name), 400, "invalid_name")


@pytest.mark.parametrize(("typed", "stored"), [
    ("Trial\u202e321-CBA", "Trial321-CBA"),  # a right-to-left override, dropped
    ("Tri\u200bal ABC", "Trial ABC"),  # zero-width space
    ("  Trial \t\n ABC ", "Trial ABC"),
    ("Cafe\u0301 bowl", "Caf\u00e9 bowl"),  # NFC: one é
    ("Caf\u00e9\u200b\u0301", "Caf\u00e9\u0301"),  # removed invisible, composed again
    ("Teller 😀", "Teller 😀"),
])
def test_names_are_normalised(client, typed, stored):
    answer = create(client, typed)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    expected = unicodedata.normalize("NFC", stored)
    made = session_of(answer)
    assert made["name"] == expected
    assert session_of(client.get(f"/api/v1/sessions/{made['id']}"))["name"] == expected


@pytest.mark.parametrize("name", [
    "\u0405ession 2026-11-30",  # Cyrillic capital DZE for S: the report's name
    "S\u0435ssion 2026-11-30",  # Cyrillic ie
    "Sess\u0456on 2026-11-30",  # Cyrillic i
    "Sessi\u043en 2026-11-30",  # Cyrillic o
    "SESSION 2026-11-30",
    "session 2026-11-30",
    "Session \uff12\uff10\uff12\uff16-\uff11\uff11-\uff13\uff10",  # full-width digits
    "Session 2026\u201011\u201030",  # Unicode hyphens
    "Session 2026\u221211\u221230",  # minus signs
    "\uff33ession 2026-11-30",  # full-width S
    "5ession 2026-11-30",
    "Sess1on 2026-11-30",
    "Sesslon 2026-11-30",
    "Session\u200b 2026-11-30",
    "\U0001d412ession 2026-11-30",  # mathematical bold S
    "Session  2026-11-30",
    "Session 2026-11-30\u200f",
])
def test_look_alikes_of_an_automatic_name_are_refused(client, name):
    assert "kept for the automatic daily sessions" in refused(create(client, name), 400,
                                                                "invalid_name")


@pytest.mark.parametrize("name", [
    "Session notes 2026", "Sessions 2026-11-30", "Session 2026-11-30 bowl", "Trial 2026-11-30",
])
def test_names_near_the_pattern_are_fine(client, name):
    assert create(client, name).status_code == 201


def test_names_are_one_name_whatever_their_case(app, client):
    first = create(client, "alpha")
    assert first.status_code == 201
    for clash in ("Alpha", "ALPHA", " alpha ", "al\u200bpha"):
        assert "already exists" in refused(create(client, clash), 409, "name_in_use")
    assert create(client, "\u00c4rger").status_code == 201
    refused(create(client, "\u00e4rger"), 409, "name_in_use")  # beyond ASCII too
    refused(create(client, "A\u0308rger"), 409, "name_in_use")  # decomposed Ä

    other = session_of(create(client, "beta"))["id"]
    renamed = client.patch(f"/api/v1/sessions/{other}", json={"name": "ALPHA"})
    refused(renamed, 409, "name_in_use")
    own = client.patch(f"/api/v1/sessions/{session_of(first)['id']}", json={"name": "Alpha"})
    assert own.status_code == 200 and session_of(own)["name"] == "Alpha"
    refused(client.patch(f"/api/v1/sessions/{other}", json={"name": "x\x00"}), 400,
            "invalid_name")


def test_the_database_refuses_names_that_differ_only_in_case(app):
    """The service compares first; the unique index on lower(name) stops a racing writer."""
    with app.app_context():
        insert = sa.text("INSERT INTO sessions (kind, day, name, status, files_count, "
                         "captures_count, valid_count, invalid_count, scans_count, created_at, "
                         "updated_at) VALUES ('manual', '2026-11-30', :name, 'active', 0, 0, 0, "
                         "0, 0, '2026-11-30 10:00:00', '2026-11-30 10:00:00')")
        db.session.execute(insert, {"name": "Gamma"})
        db.session.commit()
        with pytest.raises(IntegrityError):
            db.session.execute(insert, {"name": "gamma"})
            db.session.commit()
        db.session.rollback()


def test_the_browser_form_refuses_a_nul_too(client):
    answer = client.post("/sessions", data={"name": "Trial\x00"}, headers={"HX-Request": "true"})
    assert answer.status_code == 400
    assert b"control characters" in answer.data


def test_skeleton_of_the_automatic_name():
    assert names.looks_like_auto_name("Session 2026-11-30")
    assert names.looks_like_auto_name("\u0455\u0435\u0455\u0455\u0456\u043e\u0578 2026-01-01")
    assert not names.looks_like_auto_name("Session 2026-11-30 bowl")
    assert names.name_key("Alpha") == names.name_key("ALPHA") == names.name_key("alpha")
