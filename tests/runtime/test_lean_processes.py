"""Lean processes (issue 15): what each long-running process imports, checked in a fresh
interpreter (sys.modules of a subprocess), so a module-level import added anywhere that drags
Flask into the supervisor, or numpy/OpenCV/alembic into the web server, fails here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support import process_env

HEAVY = ("flask", "flask_sqlalchemy", "sqlalchemy", "alembic", "flask_migrate", "numpy", "cv2",
         "PIL", "trimesh", "skimage", "pycolmap", "rq_dashboard", "rq")


def imported_in_subprocess(code: str, data_dir: Path) -> dict:
    """Run `code` (which leaves a dict in `result`) in a fresh interpreter; returns `result`
    with "heavy": the HEAVY modules it had imported by the end."""
    script = (
        "import json, sys\n"
        f"{code}\n"
        f"result['heavy'] = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "print('RESULT ' + json.dumps(result))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=process_env(data_dir),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_the_supervisor_of_scanner_run_imports_no_flask_nor_numpy(data_dir):
    """`scanner run` dispatched as the console script does, up to Supervisor.run (replaced by
    one that reports instead of starting the station). Its run() then preloads the stack its
    forked parts share, on purpose (test_zygote.py says what it holds then); until then, and
    when it fails to start (a sentence about the configuration), it is a small process."""
    code = (
        "import sys\n"
        "from scanner_app.runtime import supervisor\n"
        "result = {}\n"
        "def fake_run(self):\n"
        "    result['parts'] = [p.name for p in self.parts]\n"
        "    return 0\n"
        "supervisor.Supervisor.run = fake_run\n"
        "sys.argv = ['scanner', 'run', '--port', '5999']\n"
        "from scanner_app.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    result['exit'] = exc.code\n"
    )
    result = imported_in_subprocess(code, data_dir)
    assert result["exit"] == 0
    assert "web" in result["parts"] and "button" in result["parts"]
    assert result["heavy"] == [], f"the supervisor imported {result['heavy']}"


def test_the_web_app_loads_no_alembic_numpy_opencv_nor_migrations(data_dir):
    """The app the web server builds: migrations, image maths and the job dashboard's
    neighbours load only where used."""
    code = (
        "from scanner_app import create_app\n"
        "app = create_app()\n"
        "result = {'rules': len(list(app.url_map.iter_rules()))}\n"
    )
    result = imported_in_subprocess(code, data_dir)
    assert result["rules"] > 20
    for module in ("alembic", "flask_migrate", "numpy", "cv2", "trimesh", "skimage",
                   "pycolmap"):
        assert module not in result["heavy"], f"the web app imported {module}"


def test_a_worker_app_has_no_job_dashboard_and_migrations_still_load_on_demand(data_dir):
    code = (
        "from scanner_app import create_app\n"
        "app = create_app(overrides={'SCANNER_RQ_DASHBOARD': False})\n"
        "result = {'rq': any(r.rule.startswith('/rq') for r in app.url_map.iter_rules())}\n"
        "result['before'] = 'alembic' in sys.modules\n"
        "with app.app_context():\n"
        "    app.extensions['migrate'].migrate.get_config()\n"
        "result['after'] = 'alembic' in sys.modules\n"
    )
    result = imported_in_subprocess(code, data_dir)
    assert result["rq"] is False
    assert "rq_dashboard" not in result["heavy"]
    assert result["before"] is False and result["after"] is True


def test_scanner_db_upgrade_still_migrates_a_fresh_data_dir(data_dir):
    done = subprocess.run([sys.executable, "-m", "scanner_app.cli", "db", "upgrade"],
                          env=process_env(data_dir), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run([sys.executable, "-m", "scanner_app.cli", "db", "current"],
                          env=process_env(data_dir), capture_output=True, text=True,
                          timeout=120)
    assert "(head)" in done.stdout, done.stdout + done.stderr


def test_the_gunicorn_master_of_scanner_web_imports_no_flask(data_dir):
    """`scanner web` up to serve() (replaced by one that reports): the master process only
    binds and supervises; the app is built in its worker after the fork."""
    code = (
        "import sys\n"
        "from scanner_app.runtime import web_server\n"
        "result = {}\n"
        "def fake_serve(listener, threads, ready_message=None, **options):\n"
        "    result['threads'] = threads\n"
        "    listener.close()\n"
        "    raise SystemExit(0)\n"
        "web_server.serve = fake_serve\n"
        "sys.argv = ['scanner', 'web', '--port', '0', '--threads', '3']\n"
        "from scanner_app.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    result['exit'] = exc.code\n"
    )
    result = imported_in_subprocess(code, data_dir)
    assert result["threads"] == 3
    assert result["heavy"] == [], f"the gunicorn master imported {result['heavy']}"


def test_an_up_to_date_sqlite_database_is_seen_without_migrating(data_dir, monkeypatch):
    """`scanner run` skips the `scanner db upgrade` process (app + alembic) when the SQLite
    file is at the one head already; any doubt, and it migrates as before."""
    import sqlite3

    from alembic.script import ScriptDirectory

    from scanner_app.config import load_settings
    from scanner_app.runtime import schema_state, supervisor
    from tests.support import station_env

    script = ScriptDirectory(str(schema_state.VERSIONS_DIR.parent))
    assert schema_state.head_revisions() == set(script.get_heads())

    settings = load_settings(env=station_env(data_dir))
    assert schema_state.is_up_to_date(settings.database_url) is False  # no file yet
    assert schema_state.is_up_to_date("postgresql+psycopg://u@127.0.0.1/x") is False

    done = subprocess.run([sys.executable, "-m", "scanner_app.cli", "db", "upgrade"],
                          env=process_env(data_dir), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert schema_state.is_up_to_date(settings.database_url) is True

    ran: list[list[str]] = []
    real_run = subprocess.run
    monkeypatch.setattr(supervisor.subprocess, "run",
                        lambda args, **kw: ran.append(args) or real_run(args, **kw))
    station = supervisor.Supervisor(settings, parts=[], subreaper=False)
    assert station.migrate_database() is True
    assert ran == []

    with sqlite3.connect(data_dir / "scanner.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
    assert schema_state.is_up_to_date(settings.database_url) is False  # behind: migrate

    fresh = data_dir / "fresh"
    fresh.mkdir()
    fresh_station = supervisor.Supervisor(load_settings(env=station_env(fresh)), parts=[],
                                          subreaper=False)
    # A new station: its schema is made in a child forked from this process (zygote.py),
    # no `scanner db upgrade` process.
    assert fresh_station.migrate_database() is True
    assert ran == []
    assert schema_state.is_up_to_date(fresh_station.settings.database_url) is True


def test_only_the_scan_worker_loads_the_scan_job_and_its_image_libraries(data_dir,
                                                                          redis_server):
    code = (
        "from redis import Redis\n"
        "from scanner_app import create_app\n"
        "from scanner_app.runtime.worker import StationWorker\n"
        "app = create_app(overrides={'SCANNER_RQ_DASHBOARD': False})\n"
        f"conn = Redis.from_url({redis_server!r})\n"
        "result = {}\n"
        "for queues in (['uploads'], ['processing'], ['hardware']):\n"
        "    StationWorker(queues, connection=conn, app=app, name='lean-' + queues[0])\n"
        "    result[queues[0]] = sorted(m for m in ('numpy', 'cv2', 'scanner_app.scans.job')\n"
        "                               if m in sys.modules)\n"
    )
    result = imported_in_subprocess(code, data_dir)
    assert result["uploads"] == [] and result["processing"] == [], result
    # The scan job (its stop request) but not numpy/OpenCV: the work-horse that scans loads
    # them (tests/platform/test_lean_imports.py).
    assert result["hardware"] == ["scanner_app.scans.job"], result


def test_the_button_daemon_loads_no_image_libraries_nor_job_dashboard(data_dir):
    """`scanner button` on the mock rig up to its loop (one poll of the scan state, then
    reported instead of looping). It still builds the app (Flask-SQLAlchemy): known."""
    done = subprocess.run([sys.executable, "-m", "scanner_app.cli", "db", "upgrade"],
                          env=process_env(data_dir), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    code = (
        "import sys\n"
        "from scanner_app.runtime import button_daemon\n"
        "result = {}\n"
        "def fake_run(self):\n"
        "    result['led'] = self.poll_once()\n"
        "    self.button.close()\n"
        "button_daemon.ButtonDaemon.run = fake_run\n"
        "sys.argv = ['scanner', 'button']\n"
        "from scanner_app.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    result['exit'] = exc.code\n"
    )
    result = imported_in_subprocess(code, data_dir)
    assert result["led"] == "idle"
    for module in ("numpy", "cv2", "trimesh", "skimage", "pycolmap", "rq_dashboard", "alembic"):
        assert module not in result["heavy"], f"the button daemon imported {module}"


def test_a_worker_command_loads_no_flask_cli_plugins(data_dir):
    """`scanner worker` up to run_worker (replaced by one that reports): the station's own
    command is found without loading the flask.commands plugins (Flask-Limiter's imports
    rich: ~65 ms and a few MB in every worker); a plugin's command is still there."""
    code = (
        "import scanner_app.runtime.worker as station_worker\n"
        "result = {}\n"
        "def report(*args, **kwargs):\n"
        "    result['loaded'] = sorted(m for m in ('rich', 'flask_limiter.commands')\n"
        "                              if m in sys.modules)\n"
        "station_worker.run_worker = report\n"
        "from scanner_app.cli import __getattr__ as cli_of\n"
        "try:\n"
        "    cli_of('cli')(['worker', '--queues', 'uploads'], prog_name='scanner')\n"
        "except SystemExit as exc:\n"
        "    result['exit'] = exc.code\n"
    )
    result = imported_in_subprocess(code, data_dir)
    assert result["loaded"] == [] and result["exit"] == 0, result
    done = subprocess.run([sys.executable, "-m", "scanner_app.cli", "limiter", "--help"],
                          env=process_env(data_dir), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "Flask-Limiter" in done.stdout, done.stdout + done.stderr
