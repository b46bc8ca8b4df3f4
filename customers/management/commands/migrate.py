"""`migrate`, safe to run from every replica at once, as the first thing a container does.

It waits for the database: a compose that ignores `condition: service_healthy` (Debian 12's
podman 4.3 does) starts it while PostgreSQL is still starting, and a bare "Connection
refused" would stop the whole stack. It retries for DATABASE_WAIT_SECONDS (--wait), saying
what it waits for, then gives up with a message that names the database's host.

Django's own migrate is not safe from several replicas: starting together on a fresh
PostgreSQL each creates the same tables (two fail on a duplicate type) or records the same
migration twice. Here each run first takes a PostgreSQL advisory lock, so they run one after
another and the later ones find nothing left to do. Other databases (SQLite: one file, one
process) run Django's migrate unchanged.

With LOG_FORMAT=json (production) its output goes through the log as JSON lines, like every
other line the container writes.
"""

from __future__ import annotations

import io
import logging
import time
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.core.management.commands.migrate import Command as DjangoMigrateCommand
from django.db import OperationalError, connections
from django.db.backends.base.base import BaseDatabaseWrapper

# Any 64-bit number that no other application on the same database uses for a lock.
MIGRATION_LOCK_ID = 0x6D6574726F6E6F6D  # "metronom"
RETRY_PAUSE_SECONDS = 2.0

logger = logging.getLogger("customers.migrate")


class LogLines(io.TextIOBase):
    """A stream that logs each complete line (migrate writes "Applying x..." and " OK"
    separately: one line once both are in)."""

    def __init__(self) -> None:
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if line.strip():
                logger.info(line.strip())
        return len(text)

    def close(self) -> None:
        if self._pending.strip():
            logger.info(self._pending.strip())
        self._pending = ""
        super().close()


class Command(DjangoMigrateCommand):
    help = (
        DjangoMigrateCommand.help
        + " Waits for the database; replicas may run it at once (PostgreSQL lock)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--wait",
            type=float,
            default=settings.DATABASE_WAIT_SECONDS,
            metavar="SECONDS",
            help="Seconds to wait for the database to answer (DATABASE_WAIT_SECONDS, "
            "default %(default)s).",
        )

    def execute(self, *args: Any, **options: Any) -> str | None:
        if settings.LOG_FORMAT == "json" and not options.get("stdout"):
            lines = LogLines()
            try:
                return super().execute(*args, **{**options, "stdout": lines, "no_color": True})
            finally:
                lines.close()
        return super().execute(*args, **options)

    def handle(self, *args: Any, **options: Any) -> None:
        connection = connections[options["database"]]
        self._wait_for(connection, options["wait"])
        if connection.vendor != "postgresql":
            super().handle(*args, **options)
            return
        # A session lock: held across the transactions of the migrations, released on
        # unlock or, if this process dies, when its connection closes.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK_ID])
        try:
            super().handle(*args, **options)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK_ID])

    def _wait_for(self, connection: BaseDatabaseWrapper, seconds: float) -> None:
        where = _describe(connection)
        deadline = time.monotonic() + seconds
        tries = 0
        while True:
            tries += 1
            try:
                connection.ensure_connection()
                return
            except OperationalError as error:
                reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CommandError(
                        f"The database at {where} did not answer in {seconds:g} s "
                        f"({tries} tries; last: {reason}). Check DATABASE_URL and that the "
                        "database is running, or wait longer with DATABASE_WAIT_SECONDS."
                    ) from None
                self.stdout.write(f"Waiting for the database at {where} (try {tries}): {reason}")
                time.sleep(min(RETRY_PAUSE_SECONDS, left))


def _describe(connection: BaseDatabaseWrapper) -> str:
    """host:port/name, or the SQLite file: never the password."""
    config = connection.settings_dict
    if connection.vendor == "sqlite":
        return str(config["NAME"])
    host = config.get("HOST") or "localhost"
    port = f":{config['PORT']}" if config.get("PORT") else ""
    return f"{host}{port}/{config.get('NAME', '')}"
