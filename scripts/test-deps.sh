#!/usr/bin/env bash
# Installs and starts what the test suite needs beyond Python packages, where it is missing:
# redis-server, Debian's chromium (driven by Playwright), and a PostgreSQL server on
# 127.0.0.1:5432 with trust auth and a database "test". Safe to run again.
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
if ! pg_up && ! command -v pg_ctlcluster >/dev/null; then missing+=(postgresql); fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "test-deps: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

if ! pg_up; then
  echo "test-deps: starting PostgreSQL on 127.0.0.1:5432"
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  if ! as_root grep -q "scanner-tests" "$hba"; then
    # Tests connect as postgres over TCP without a password, like the CI machines do.
    as_root sed -i '1i host all all 127.0.0.1/32 trust # scanner-tests' "$hba"
  fi
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if pg_up && command -v psql >/dev/null; then
  psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" \
    | grep -q 1 || psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE test"
fi
