"""`python manage.py sync_customers [--every 10m]`: sync the customer index from Metronome."""

from __future__ import annotations

import argparse
import gc
import re
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from customers import wiring
from customers.index import sync as index_sync
from customers.models import SyncRun

_INTERVAL = re.compile(r"(\d+)\s*([smh]?)")
_SECONDS_PER_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600}


def _interval(raw: str) -> float:
    match = _INTERVAL.fullmatch(raw.strip().lower())
    if not match or int(match[1]) == 0:
        raise argparse.ArgumentTypeError("expected a duration such as 90s, 10m or 1h")
    return int(match[1]) * _SECONDS_PER_UNIT[match[2]]


class Command(BaseCommand):
    help = (
        "Copy every Metronome customer, active and archived, into the dashboard's customer "
        "index (name search, filters, sorting, totals). Safe to run anywhere at any time: "
        "one sync runs at a time, and a failed one leaves the previous index whole."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--every",
            type=_interval,
            default=None,
            metavar="DURATION",
            help="Keep running, syncing every DURATION (e.g. 10m), for a sidecar container.",
        )
        parser.add_argument(
            "--log-every",
            type=int,
            default=100,
            metavar="PAGES",
            help="Without a terminal, log progress every PAGES pages (default 100).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # A sync parses millions of short-lived JSON containers, each batch of which starts a
        # garbage collection, and every few of those walked all of Django's own objects too:
        # a fifth of an unchanged resync's CPU (bench/README.md). This process's objects so
        # far live as long as it does, so they are set aside from collection once.
        gc.collect()
        gc.freeze()
        if options["every"] is None:
            if not self._sync_once(options["log_every"]):
                raise CommandError("The sync failed; see the message above.")
            return
        while True:
            started = time.monotonic()
            try:
                self._sync_once(options["log_every"])
            except DatabaseError as error:
                # A sidecar outlives a database restart: say so, and try again next time.
                self.stderr.write(f"Customer index sync could not run: {error}")
            time.sleep(max(0.0, options["every"] - (time.monotonic() - started)))

    def _sync_once(self, log_every: int) -> bool:
        """True unless the sync failed (another one running is not a failure)."""
        on_terminal = self.stdout.isatty()

        def progress(pages: int, customers: int) -> None:
            if on_terminal:
                self.stdout.write(f"\rSyncing: {customers:,} customers, {pages:,} pages", ending="")
                self.stdout.flush()
            elif pages % log_every == 0:
                self.stdout.write(f"Syncing: {customers:,} customers, {pages:,} pages so far")

        try:
            run = index_sync.sync(wiring.get_client(), progress=progress)
        except index_sync.SyncAlreadyRunning:
            self.stdout.write("Another customer index sync is running; this one did nothing.")
            return True
        if on_terminal:
            self.stdout.write("")
        if run.outcome != SyncRun.Outcome.SUCCEEDED:
            self.stderr.write(f"Customer index sync failed: {run.error}")
            return False
        finished = run.finished_at or run.started_at
        seconds = (finished - run.started_at).total_seconds()
        self.stdout.write(
            f"Customer index synced in {seconds:.2f}s: {run.seen:,} customers listed, "
            f"{run.inserted:,} added, {run.updated:,} changed, {run.deleted:,} removed."
        )
        return True
