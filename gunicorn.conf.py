"""gunicorn settings: `gunicorn dashboard.wsgi` reads this file from the working directory.

Every request spends most of its time waiting on Metronome, so threads, not processes,
carry the concurrency: a few workers with many threads each.
"""

import multiprocessing
import os

# gunicorn is how the dashboard runs in production: default to production settings.
os.environ.setdefault("DEBUG", "false")

bind = os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{os.environ.get('PORT') or 8000}"
workers = int(os.environ.get("GUNICORN_WORKERS") or min(4, multiprocessing.cpu_count() * 2))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or 16)
# A CSV export of a large account streams for minutes; the timeout is for a stuck worker.
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 600)
graceful_timeout = 30
keepalive = 5
# Pasted Salesforce ID lists of a few hundred IDs travel in the query string (about 20
# characters each): allow gunicorn's maximum. Longer lists are POSTed and stored instead.
limit_request_line = 8190
accesslog = "-"
# Without the query string: it can hold a customer's IDs, and logs outlive tickets.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
errorlog = "-"
