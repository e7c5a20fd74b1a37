"""The dashboard's scan card is kept per process while no scan is active (issue 15): a
repeated dashboard builds it once; a scan started or interrupted, here or in another process,
shows in the very next dashboard; while a scan is active the card is built on every request,
so progress written outside the ORM (as the heartbeat is) shows at once; each person gets
their own CSRF token in the kept card. SQLite and PostgreSQL."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

from sqlalchemy import update

from scanner_app.models import Scan
from scanner_app.platform.clock import utcnow
from scanner_app.platform.extensions import db
from scanner_app.platform.web.kept_html import CSRF_MARK
from scanner_app.scans.views import SCAN_CARDS
from scanner_app.sessions import service as session_service
from tests.support import process_env
from tests.web.conftest import sign_in

CARD = re.compile(r'<div id="scan-slot".*?</section>\s*</div>', re.S)
TOKENS = re.compile(r'name="csrf_token" value="([^"]*)"')


def _page(client) -> str:
    answer = client.get("/", headers={"Accept": "text/html"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    page = answer.get_data(as_text=True)
    assert CSRF_MARK not in page
    return page


def _card(client) -> str:
    page = _page(client)
    found = CARD.search(page)
    assert found, page
    # A key's request keeps no session, so each answer has a new token: compare without it.
    return TOKENS.sub('name="csrf_token" value="-"', found.group(0))


def _scan_row(status: str, session_id: int) -> Scan:
    now = utcnow()
    return Scan(session_id=session_id, status=status, profile="quick", source="button",
                frames_planned=12, frames_captured=3, current_angle=90.0, heartbeat_at=now,
                started_at=now, finished_at=None if status == "running" else now)


def _session(app) -> int:
    with app.app_context():
        return session_service.create_manual_session("Trial", make_current=True).id


def test_the_idle_card_is_built_once_and_scans_show_in_the_next_dashboard(
        app, client, data_dir, database_url):
    session_id = _session(app)
    assert 'data-status="idle"' in _card(client)
    builds = SCAN_CARDS.builds
    for _ in range(3):
        assert 'data-status="idle"' in _card(client)
    assert SCAN_CARDS.builds == builds  # kept

    # A scan interrupted, written by another process: the next dashboard shows it.
    script = textwrap.dedent(f"""
        from scanner_app import create_app
        from scanner_app.config import load_settings
        from scanner_app.models import Scan
        from scanner_app.platform.clock import utcnow
        from scanner_app.platform.extensions import db
        app = create_app(load_settings())
        with app.app_context():
            now = utcnow()
            db.session.add(Scan(session_id={session_id}, status="interrupted", profile="quick",
                                source="api", frames_planned=12, frames_captured=5,
                                started_at=now, finished_at=now))
            db.session.commit()
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120,
                          env=process_env(data_dir, SCANNER_DATABASE_URL=database_url))
    assert done.returncode == 0, done.stdout + done.stderr
    card = _card(client)
    assert 'data-status="interrupted"' in card and "from frame 6" in card
    builds = SCAN_CARDS.builds
    assert _card(client) == card
    assert SCAN_CARDS.builds == builds  # an interrupted scan does not change with time: kept

    # A running scan (this process): shown, following, and built on every request.
    with app.app_context():
        scan = _scan_row("running", session_id)
        db.session.add(scan)
        db.session.commit()
        scan_id = scan.id
    card = _card(client)
    assert 'data-status="running"' in card and "3 / 12" in card and 'hx-trigger="every 1s"' in card
    with app.app_context(), db.engine.begin() as conn:
        # Written as the scan job's heartbeat is: outside the ORM Session, no new stamp.
        conn.execute(update(Scan).where(Scan.id == scan_id)
                     .values(frames_captured=4, heartbeat_at=utcnow()))
    assert "4 / 12" in _card(client)

    # Finished: the card shows it and is kept again.
    with app.app_context():
        db.session.execute(update(Scan).where(Scan.id == scan_id)
                           .values(status="completed", frames_captured=12,
                                   finished_at=utcnow()))
        db.session.commit()
    card = _card(client)
    assert 'data-status="completed"' not in card  # the newest interrupted one is shown idle
    assert f'after={scan_id}' in card  # and its slot watches for scans after the new one


def test_each_person_gets_their_own_token_in_the_kept_scan_card(app, client):
    session_id = _session(app)
    with app.app_context():
        db.session.add(_scan_row("interrupted", session_id))
        db.session.commit()
    tokens = []
    for name in ("ann", "bob"):
        browser = sign_in(app, name)
        page = _page(browser)
        card_tokens = set(TOKENS.findall(CARD.search(page).group(0)))
        assert len(card_tokens) == 1 and card_tokens == set(TOKENS.findall(page))
        assert "Resume" in CARD.search(page).group(0)
        tokens.append(card_tokens.pop())
        assert _page(browser).count(tokens[-1]) >= 2  # again from the kept card, still theirs
    assert tokens[0] != tokens[1]
