"""`manage.py prune`: housekeeping to run daily (cron or a Kubernetes CronJob, README).

Removes saved searches older than SAVED_SEARCH_RETENTION_DAYS (by when they were saved)
and login-attempt records older than LOGIN_RECORD_RETENTION_DAYS. Export audit rows are
never removed: they are the record of who downloaded what.
"""

from datetime import timedelta
from typing import Any

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Model
from django.utils import timezone

from customers.models import SavedSearch


class Command(BaseCommand):
    help = "Delete old saved searches and login-attempt records (export audits are kept)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--saved-search-days",
            type=int,
            default=settings.SAVED_SEARCH_RETENTION_DAYS,
            help="Delete saved searches older than this (default %(default)s).",
        )
        parser.add_argument(
            "--login-record-days",
            type=int,
            default=settings.LOGIN_RECORD_RETENTION_DAYS,
            help="Delete login attempts and login logs older than this (default %(default)s).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted, delete nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        searches_before = now - timedelta(days=options["saved_search_days"])
        logins_before = now - timedelta(days=options["login_record_days"])
        targets: list[tuple[str, type[Model], dict[str, Any]]] = [
            ("saved searches", SavedSearch, {"created_at__lt": searches_before}),
            ("login attempts", AccessAttempt, {"attempt_time__lt": logins_before}),
            ("failed-login logs", AccessFailureLog, {"attempt_time__lt": logins_before}),
            ("login logs", AccessLog, {"attempt_time__lt": logins_before}),
        ]
        verb = "Would delete" if options["dry_run"] else "Deleted"
        for label, model, old in targets:
            rows = model._default_manager.filter(**old)
            count = (
                rows.count() if options["dry_run"] else rows.delete()[1].get(model._meta.label, 0)
            )
            self.stdout.write(f"{verb} {count} {label}.")
