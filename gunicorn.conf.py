"""gunicorn settings: `gunicorn dashboard.wsgi` reads this file from the working directory.

It reads the same `.env` as the dashboard (real deployments set the environment instead),
so PORT, GUNICORN_* and LOG_LEVEL set there apply. Every request spends most of its time
waiting on Metronome, so threads, not processes, carry the concurrency: a few workers with
many threads each.
"""

import gc
import multiprocessing
import os
from pathlib import Path

import environ

environ.Env.read_env(Path(__file__).resolve().parent / ".env", overwrite=False)
env = environ.Env()

# gunicorn is how the dashboard runs in production: default to production settings. An empty
# DEBUG (an env file's `DEBUG=`) is unset too, or Django's development default would win.
if not os.environ.get("DEBUG", "").strip():
    os.environ["DEBUG"] = "false"


def _setting(name: str, default: int) -> int:
    raw = env.str(name, default="").strip()
    if not raw:
        return default
    try:
        value = env.int(name)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, not {raw!r}.") from None
    if value < 1:
        raise SystemExit(f"{name} must be at least 1, not {raw!r}.")
    return value


# Loopback unless told otherwise: a proxy in front is the way in (the container sets
# GUNICORN_BIND=0.0.0.0:8000, its port being reachable only as published).
bind = env.str("GUNICORN_BIND", default="").strip() or f"127.0.0.1:{_setting('PORT', 8000)}"
workers = _setting("GUNICORN_WORKERS", min(4, multiprocessing.cpu_count() * 2))
worker_class = "gthread"
threads = _setting("GUNICORN_THREADS", 16)
# A CSV export of a large account streams for minutes; the timeout is for a stuck worker.
timeout = _setting("GUNICORN_TIMEOUT", 600)
# On a deploy, requests in flight (an export too) get this long to finish; the container's
# stop grace period must be longer (compose.yaml).
graceful_timeout = _setting("GUNICORN_GRACEFUL_TIMEOUT", 120)
keepalive = 5
# gunicorn's control socket (for gunicornc) is unused here; its one path per user would
# collide between instances on one machine, and the container's home is read-only.
control_socket_disable = True
# Pasted Salesforce ID lists of a few hundred IDs travel in the query string (about 20
# characters each): allow gunicorn's maximum. Longer lists are POSTed and stored instead.
limit_request_line = 8190

# The dashboard logs each request itself (dashboard/request_log.py: request ID, user, view,
# status, duration, never the query string); gunicorn's own lines are JSON on stdout too.
accesslog = None
errorlog = "-"
_log_level = env.str("LOG_LEVEL", default="").strip().upper() or "INFO"
# The same default as the dashboard's settings: JSON unless DEBUG is on.
_log_format = env.str("LOG_FORMAT", default="").strip().lower()
if (_log_format or ("plain" if env.bool("DEBUG") else "json")) == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            }
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "json",
            }
        },
        "loggers": {
            "gunicorn.error": {"handlers": ["console"], "level": _log_level, "propagate": False},
            "gunicorn.access": {"handlers": [], "propagate": False},
        },
        "root": {"handlers": [], "level": "WARNING"},
    }


def when_ready(server: object) -> None:
    """Say so loudly when a `.env` or the environment turned production into debug mode."""
    if env.bool("DEBUG", default=False):
        server.log.warning(  # type: ignore[attr-defined]
            "DEBUG is true: Django's debug pages are served and HTTPS is not enforced. "
            "Unset DEBUG (or set it to false) for production."
        )


def post_worker_init(worker: object) -> None:
    """Move everything loaded so far (Django, the app, the client) out of the garbage
    collector's reach: its full collections otherwise walk those hundreds of thousands of
    long-lived objects again and again, pausing a request now and then (the page's p99)."""
    gc.freeze()
