import hashlib
import json

from django.conf import settings
from django.db import models


class CustomerAccess(models.Model):
    """No table: it only carries the permissions that the Support and Finance groups hold."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_customers", "Can view Metronome customers"),
            ("export_customers", "Can download Metronome customers as CSV"),
        ]

    def __str__(self) -> str:
        return "Access to Metronome customers"


class SavedSearch(models.Model):
    """A search too long for a URL (a pasted list of up to 1,000 IDs), stored under a short
    key derived from its content, so `/customers/?search=<key>` is as shareable, reloadable
    and exportable as any other URL, across instances and restarts."""

    key = models.CharField(max_length=32, primary_key=True)
    params = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.key

    @staticmethod
    def key_for(params: dict) -> str:
        canonical = json.dumps(params, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:20]

    @classmethod
    def store(cls, params: dict) -> "SavedSearch":
        saved, _ = cls.objects.get_or_create(key=cls.key_for(params), defaults={"params": params})
        return saved


class ExportAudit(models.Model):
    """One row per CSV download: who exported what, and whether the file was complete."""

    class Outcome(models.TextChoices):
        STARTED = "started", "Started"
        COMPLETE = "complete", "Complete"
        FAILED = "failed", "Failed"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept apart from `user`, so the record survives the account's deletion.
    username = models.CharField(max_length=150)
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    query_string = models.TextField(blank=True)
    rows_written = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.STARTED)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = "CSV export"

    def __str__(self) -> str:
        return f"{self.username} at {self.started_at:%Y-%m-%d %H:%M} ({self.outcome})"
