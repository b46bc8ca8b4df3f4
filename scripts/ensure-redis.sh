#!/usr/bin/env bash
# Starts a local Redis on 127.0.0.1:6379 (installing Debian's redis-server package when
# missing), so CI runs the suite with a shared cache as in a scaled-out deployment:
#   CACHE_URL=redis://127.0.0.1:6379/0
# Idempotent: a Redis already answering is left alone. Loopback only, no persistence.
# Needs root to install (CI runs as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
  echo "ensure-redis: already running on 127.0.0.1:6379"
  exit 0
fi
if ! command -v redis-server >/dev/null; then
  echo "ensure-redis: installing Debian's redis-server..."
  apt-get update -qq >/dev/null && apt-get install -y -qq redis-server >/dev/null
fi
redis-server --bind 127.0.0.1 --port 6379 --protected-mode yes --save "" --appendonly no \
  --daemonize yes --logfile /tmp/ensure-redis.log
for _ in $(seq 30); do
  redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG && break
  sleep 0.5
done
redis-cli -h 127.0.0.1 -p 6379 ping
