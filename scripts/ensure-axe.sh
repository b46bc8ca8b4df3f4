#!/usr/bin/env bash
# Installs axe-core (the accessibility checker the browser tests run in the page) from the
# npm registry into tests/e2e/axe/node_modules, at the version pinned by its package-lock.json.
# Exits non-zero (and says why) when it cannot; the accessibility tests are then skipped,
# while CI (REQUIRE_E2E=1) treats that as a failure.
set -u
cd "$(dirname "$0")/../tests/e2e/axe" || exit 1
if [ -f node_modules/axe-core/axe.min.js ]; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "ensure-axe: npm is missing: install Node.js (Debian: apt-get install npm)." >&2
  exit 1
fi
echo "ensure-axe: installing axe-core for the browser tests..."
npm ci --no-audit --no-fund --silent
