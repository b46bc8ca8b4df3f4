"""The image's health check: /healthz on the port gunicorn listens on.

Run by the container engine outside the entrypoint, so it applies the entrypoint's defaults
itself: an empty GUNICORN_BIND (an env file's `GUNICORN_BIND=`) means 0.0.0.0:$PORT. Exits 0
when /healthz answers 200, 1 otherwise, with the reason on stderr."""

import os
import sys
import urllib.request

bind = os.environ.get("GUNICORN_BIND", "").strip()
port = bind.rsplit(":", 1)[1] if ":" in bind else (os.environ.get("PORT", "").strip() or "8000")
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=4) as response:
        healthy = response.status == 200
except OSError as error:
    sys.exit(f"unhealthy: {error}")
sys.exit(0 if healthy else 1)
