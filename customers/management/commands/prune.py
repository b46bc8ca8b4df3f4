"""`manage.py prune [--every 24h]`: housekeeping to run daily (cron, a Kubernetes CronJob, or
compose.yaml's `housekeeping` sidecar, which passes --every).

Deletes what is older than its retention setting: saved searches (SAVED_SEARCH_RETENTION_DAYS,
by when they were saved), login-attempt records, failed ones included
(LOGIN_RECORD_RETENTION_DAYS), CSV export audits (EXPORT_AUDIT_RETENTION_DAYS: keep them as
long as your audit policy asks) and index sync runs (SYNC_RUN_RETENTION_DAYS; never the run
the index is from, nor one still running), and the per-person work slots that expired.
"""

import time
from datetime import timedelta
from typing import Any

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Model, Q
from django.utils import timezone

from customers.management.commands.sync_customers import _interval
from customers.models import ExportAudit, SavedSearch, SyncRun, WorkSlot

RETENTION_OPTIONS = {
    # option: (setting, what it deletes)
    "saved_search_days": ("SAVED_SEARCH_RETENTION_DAYS", "saved searches"),
    "login_record_days": ("LOGIN_RECORD_RETENTION_DAYS", "login attempts and login logs"),
    "export_audit_days": ("EXPORT_AUDIT_RETENTION_DAYS", "CSV export audits"),
    "sync_run_days": ("SYNC_RUN_RETENTION_DAYS", "index sync runs"),
}


class Command(BaseCommand):
    help = (
        "Delete saved searches, login-attempt records, CSV export audits and index sync "
        "runs older than their retention settings."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        for option, (setting, what) in RETENTION_OPTIONS.items():
            parser.add_argument(
                "--" + option.replace("_", "-"),
                type=int,
                default=getattr(settings, setting),
                help=f"Delete {what} older than this many days ({setting}, default %(default)s).",
            )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted, delete nothing."
        )
        parser.add_argument(
            "--every",
            type=_interval,
            default=None,
            metavar="DURATION",
            help="Keep running, pruning every DURATION (e.g. 24h), for a sidecar container.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        while True:
            self._prune(options)
            if options["every"] is None:
                return
            time.sleep(options["every"])

    def _prune(self, options: dict[str, Any]) -> None:
        now = timezone.now()

        def before(option: str) -> Any:
            return now - timedelta(days=options[option])

        logins_before = before("login_record_days")
        index_run = SyncRun.objects.filter(outcome=SyncRun.Outcome.SUCCEEDED).first()
        targets: list[tuple[str, type[Model], Q]] = [
            ("saved searches", SavedSearch, Q(created_at__lt=before("saved_search_days"))),
            ("login attempts", AccessAttempt, Q(attempt_time__lt=logins_before)),
            ("failed-login logs", AccessFailureLog, Q(attempt_time__lt=logins_before)),
            ("login logs", AccessLog, Q(attempt_time__lt=logins_before)),
            ("CSV export audits", ExportAudit, Q(started_at__lt=before("export_audit_days"))),
            (
                "index sync runs",
                SyncRun,
                Q(started_at__lt=before("sync_run_days"))
                & ~Q(outcome=SyncRun.Outcome.RUNNING)
                & ~Q(pk=index_run.pk if index_run else None),
            ),
            ("expired work slots", WorkSlot, Q(expires_at__lt=now)),
        ]
        verb = "Would delete" if options["dry_run"] else "Deleted"
        for label, model, old in targets:
            rows = model._default_manager.filter(old)
            count = (
                rows.count() if options["dry_run"] else rows.delete()[1].get(model._meta.label, 0)
            )
            self.stdout.write(f"{verb} {count} {label}.")
