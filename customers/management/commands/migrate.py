"""`migrate`, safe to run from every replica at once.

Django's own migrate is not: replicas starting together on a fresh PostgreSQL each create
the same tables (two fail on a duplicate type) or record the same migration twice. Here
each run first takes a PostgreSQL advisory lock, so they run one after another and the
later ones find nothing left to do. Other databases (SQLite: one file, one process) run
Django's migrate unchanged.
"""

from typing import Any

from django.core.management.commands.migrate import Command as DjangoMigrateCommand
from django.db import connections

# Any 64-bit number that no other application on the same database uses for a lock.
MIGRATION_LOCK_ID = 0x6D6574726F6E6F6D  # "metronom"


class Command(DjangoMigrateCommand):
    help = DjangoMigrateCommand.help + " Replicas may run it at once (PostgreSQL lock)."

    def handle(self, *args: Any, **options: Any) -> None:
        connection = connections[options["database"]]
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
