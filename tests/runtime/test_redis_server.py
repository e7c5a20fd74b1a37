"""The private Redis: a real redis-server on a unix socket in a temp data dir."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from scanner_app.config import load_settings
from scanner_app.platform.queues import redis_connection
from scanner_app.runtime import redis_server
from scanner_app.runtime.redis_server import PrivateRedis, PrivateRedisError, start_private_redis
from tests.runtime.procs import pid_alive
from tests.support import station_env, wait_until


@pytest.fixture
def short_data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "d"
    path.mkdir()
    return path


def test_starts_on_the_socket_answers_ping_and_stops_cleanly(short_data_dir):
    settings = load_settings(env=station_env(short_data_dir))
    assert settings.redis_url is None
    server = start_private_redis(settings)
    try:
        sock = settings.redis_socket
        assert stat.S_ISSOCK(sock.stat().st_mode)
        assert stat.S_IMODE(sock.stat().st_mode) == 0o700
        assert int((short_data_dir / "redis.pid").read_text()) == server.pid
        # The station's own connection helper finds the same server.
        connection = redis_connection(settings)
        assert connection.ping() is True
        connection.set("hello", "station")
        assert server.client().get("hello") == b"station"
        # No TCP port: the only way in is the socket.
        assert server.client().config_get("port") == {"port": "0"}
        pid = server.pid
    finally:
        server.stop()
    assert not pid_alive(pid)
    assert not settings.redis_socket.exists()
    assert not (short_data_dir / "redis.pid").exists()
    # It saved its dump in the data dir on the way out.
    assert (short_data_dir / redis_server.DUMP_NAME).exists()
    server.stop()  # a second stop is harmless


def test_a_stale_socket_file_is_removed_and_replaced(short_data_dir):
    sock_path = short_data_dir / "redis.sock"
    leftover = socket.socket(socket.AF_UNIX)
    leftover.bind(str(sock_path))  # a socket file nobody listens on, as after a crash
    leftover.close()
    (short_data_dir / "redis.pid").write_text("999999999\n")  # a pid that is not running
    with PrivateRedis(short_data_dir) as server:
        assert server.ping()
        assert int((short_data_dir / "redis.pid").read_text()) == server.pid
    assert not sock_path.exists()


def test_a_redis_left_behind_by_a_killed_owner_is_replaced(short_data_dir):
    # A real owner process that starts the server and is then SIGKILLed: its redis-server
    # lives on (own process group), still holding the socket and the pid file.
    code = (
        "import sys, time; from pathlib import Path;"
        "from scanner_app.runtime.redis_server import PrivateRedis;"
        f"r = PrivateRedis(Path({str(short_data_dir)!r})).start();"
        "print(r.pid, flush=True); time.sleep(60)"
    )
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        orphan_pid = int(owner.stdout.readline())
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
    assert pid_alive(orphan_pid)
    with PrivateRedis(short_data_dir) as server:
        assert server.pid != orphan_pid
        assert server.ping()
        wait_until(lambda: not pid_alive(orphan_pid), 10, "the orphan redis-server to stop")


def test_a_second_owner_for_the_same_data_dir_is_refused(short_data_dir):
    with PrivateRedis(short_data_dir) as first:
        with pytest.raises(PrivateRedisError, match="already runs the private Redis"):
            PrivateRedis(short_data_dir).start()
        assert first.ping()  # the refused second try did not disturb the first


def test_a_server_that_cannot_start_is_reported_with_its_log(short_data_dir):
    fake = short_data_dir / "broken-redis"
    fake.write_text("#!/bin/sh\necho 'FATAL: cannot open the dump file' \nexit 1\n")
    fake.chmod(0o755)
    server = PrivateRedis(short_data_dir, binary=str(fake))
    with pytest.raises(PrivateRedisError, match="cannot open the dump file"):
        server.start()
    # The lock is released: a working server can start right after.
    with PrivateRedis(short_data_dir) as again:
        assert again.ping()


def test_a_socket_path_too_long_for_unix_sockets_is_refused_with_advice(tmp_path):
    deep = tmp_path / ("x" * 120)
    with pytest.raises(PrivateRedisError, match="shorter"):
        PrivateRedis(deep).start()


def test_without_any_redis_server_the_message_says_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.setattr(redis_server.shutil, "which", lambda _name: None)
    monkeypatch.setattr(redis_server.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setattr(redis_server.importlib.util, "find_spec", lambda _name: None)
    with pytest.raises(PrivateRedisError, match="apt install redis-server"):
        redis_server.find_redis_server()


def test_the_redis_server_on_path_is_found():
    assert os.access(redis_server.find_redis_server(), os.X_OK)
