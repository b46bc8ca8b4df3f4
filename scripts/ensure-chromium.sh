#!/usr/bin/env bash
# Installs Debian's chromium for the browser tests when it is missing.
# Playwright cannot download its own browsers here, so the tests drive /usr/bin/chromium.
# Exits non-zero (and says why) when it cannot install; `make test` then skips the browser
# tests, while CI (.ci/run) treats that as a failure.
set -u
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ] && ! command -v sudo >/dev/null; then
  echo "ensure-chromium: /usr/bin/chromium is missing and installing it needs root." >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" = "0" ] || SUDO="sudo"
if ! command -v apt-get >/dev/null; then
  echo "ensure-chromium: /usr/bin/chromium is missing and this is not a Debian-like system." >&2
  exit 1
fi
echo "ensure-chromium: installing Debian's chromium for the browser tests..."
export DEBIAN_FRONTEND=noninteractive
# The CJK fonts let screenshots show the sandbox's Chinese, Japanese and Korean names.
$SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
if [ -x /usr/bin/chromium ]; then
  /usr/bin/chromium --version
else
  echo "ensure-chromium: apt-get could not install chromium." >&2
  exit 1
fi
