"""A throwaway PostgreSQL database beside DATABASE_URL's: the index benchmark syncs into
one, and the tests that migrate an empty database (tests/test_production.py) start from one.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

# How long a drop waits for an autovacuum worker to finish: 30 tries, 2 s apart.
DROP_TRIES = 30
DROP_PAUSE_SECONDS = 2


@contextlib.contextmanager
def scratch_postgres(database_url: str, name: str) -> Iterator[str]:
    """A new, empty database `name` on DATABASE_URL's server (dropped first if a run before
    left it), its URL given, dropped afterwards."""
    import psycopg

    base = database_url.rpartition("/")[0]
    maintenance = f"{base}/postgres"
    with psycopg.connect(maintenance, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        # An autovacuum worker (its role the superuser's) may still be analysing what was
        # just written, and FORCE may not end it: wait for it a little and try again.
        with psycopg.connect(maintenance, autocommit=True) as admin:
            for attempt in range(1, DROP_TRIES + 1):
                try:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    break
                except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse):
                    if attempt == DROP_TRIES:
                        raise
                    time.sleep(DROP_PAUSE_SECONDS)
