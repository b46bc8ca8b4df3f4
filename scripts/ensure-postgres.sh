#!/usr/bin/env bash
# Starts a local PostgreSQL (installing Debian's package when missing) with a role the tests
# can use, so CI runs the suite on PostgreSQL as well as SQLite:
#   DATABASE_URL=postgres://dashboard:dashboard@127.0.0.1:5432/dashboard
# Needs root (CI runs as root); the role may create the test database.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! command -v pg_ctlcluster >/dev/null; then
  echo "ensure-postgres: installing Debian's postgresql..."
  apt-get update -qq >/dev/null && apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
[ -d "/etc/postgresql/$version/main" ] || pg_createcluster "$version" main >/dev/null
pg_ctlcluster "$version" main start 2>/dev/null || true  # already running is fine
for _ in $(seq 30); do
  pg_isready -q -h 127.0.0.1 && break
  sleep 1
done
pg_isready -h 127.0.0.1
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname = 'dashboard'\"" | grep -q 1 \
  || su postgres -c "psql -qc \"CREATE ROLE dashboard LOGIN PASSWORD 'dashboard' CREATEDB\""
