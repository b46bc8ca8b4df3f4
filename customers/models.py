import hashlib
import json
import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class SearchQuotaExceeded(Exception):
    """A person stored more searches today than SAVED_SEARCHES_PER_DAY allows."""


class CustomerAccess(models.Model):
    """No table: it only carries the permissions that the Support and Finance groups hold."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_customers", "Can view Metronome customers"),
            (
                "export_customers",
                "Can download Metronome customers as CSV and their invoices as PDF",
            ),
            # The Index maintainers group holds it (migration 0008), and superusers.
            ("sync_index", "Can start a customer index update from the customers page"),
            # The Managers group's: rename, change or delete any shared saved view.
            ("manage_shared_views", "Can change and delete any shared saved view"),
        ]

    def __str__(self) -> str:
        return "Access to Metronome customers"


class SavedSearch(models.Model):
    """Filters too long for a URL (a pasted list of up to 1,000 IDs), stored under a short
    key derived from their content, so `/customers/?search=<key>` is as shareable, reloadable
    and exportable as any other URL, across instances and restarts. Only filters, the paste
    boxes compacted (`PastedIds.as_text`): the page size, the position in the results and the
    Active/Archived toggle stay in the URL beside the key (searches stored before the toggle
    moved out may still hold it; the URL's overrides it).

    Stored only by a POST (CSRF-checked), at most SAVED_SEARCHES_PER_DAY a day per person."""

    key = models.CharField(max_length=32, primary_key=True)
    params = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=True,
    )

    def __str__(self) -> str:
        return self.key

    @staticmethod
    def key_for(params: dict[str, Any]) -> str:
        canonical = json.dumps(params, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:20]

    @classmethod
    def store(
        cls, filters: Mapping[str, str | list[str]], user: AbstractBaseUser | AnonymousUser
    ) -> "SavedSearch":
        """The stored search for these filters, stored now if nobody has yet. Raises
        `SearchQuotaExceeded` when `user` has stored their day's allowance already."""
        params = {
            name: [value] if isinstance(value, str) else list(value)
            for name, value in filters.items()
        }
        key = cls.key_for(params)
        existing = cls.objects.filter(key=key).first()
        if existing is not None:
            return existing
        creator = user if isinstance(user, AbstractBaseUser) else None
        since = timezone.now() - timedelta(days=1)
        if (
            creator is not None
            and cls.objects.filter(created_by=creator, created_at__gte=since).count()
            >= settings.SAVED_SEARCHES_PER_DAY
        ):
            raise SearchQuotaExceeded(
                f"You have stored {settings.SAVED_SEARCHES_PER_DAY} long searches in the last "
                "24 hours, the most allowed. Search for fewer IDs at a time (about 300 fit in "
                "a link), or try again tomorrow."
            )
        saved, _ = cls.objects.get_or_create(
            key=key, defaults={"params": params, "created_by": creator}
        )
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
    # The validated filters as JSON, summed up and cut to fit (customers.export.audited_filters).
    filters = models.CharField(max_length=2000, blank=True)
    rows_written = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.STARTED)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = "CSV export"

    def __str__(self) -> str:
        return f"{self.username} at {self.started_at:%Y-%m-%d %H:%M} ({self.outcome})"


class IndexedCustomer(models.Model):
    """One Metronome customer in the synced index that name search, the filters the API
    lacks, sorting and totals read (`customers.index.search`): the values as Metronome
    sent them, and folded copies (case and accents removed) that searches compare against.
    Only `manage.py sync_customers` writes it (`customers.index.sync`)."""

    id = models.UUIDField(primary_key=True)
    name = models.TextField()
    name_folded = models.TextField()
    ingest_aliases = models.JSONField(default=list)
    # "\n" before and after each folded alias, so one LIKE finds an alias by prefix or whole.
    aliases_folded = models.TextField(blank=True)
    external_id = models.TextField(blank=True)
    external_id_folded = models.TextField(blank=True)
    salesforce_account_id = models.TextField(blank=True)  # as Metronome stores it
    salesforce_account_id_18 = models.CharField(max_length=18, blank=True)
    # The 18-character form lower-cased: what a pasted ID in any case is matched against.
    salesforce_key = models.CharField(max_length=18, blank=True)
    billable_status = models.CharField(max_length=16, blank=True)
    billable_status_effective_at = models.DateTimeField(null=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    archived_at = models.DateTimeField(null=True)
    custom_fields = models.JSONField(default=dict)
    custom_values_folded = models.TextField(blank=True)
    # A digest of every value above: a sync rewrites a row only when it changed.
    fingerprint = models.CharField(max_length=32)
    indexed_at = models.DateTimeField()
    # SQLite only: this row's rowid in the FTS5 text index (`customers.index.staging`), which
    # a text search joins on. Reading an id stored in the text index cost a lookup per match,
    # a third of a name search at 100,000 (bench/README.md, issue 24). A column rather than
    # the table's own rowid, which VACUUM may renumber. NULL on PostgreSQL, whose trigram
    # index is on this table itself.
    text_key = models.BigIntegerField(null=True, editable=False)

    class Meta:
        verbose_name = "indexed customer"
        constraints = [
            models.UniqueConstraint(
                fields=["text_key"],
                condition=models.Q(text_key__isnull=False),
                name="customer_index_text_key",
            ),
        ]
        indexes = [
            models.Index(fields=["name_folded", "id"], name="customer_index_name"),
            models.Index(fields=["created_at"], name="customer_index_created"),
            models.Index(fields=["updated_at"], name="customer_index_updated"),
            models.Index(fields=["salesforce_key"], name="customer_index_salesforce"),
            models.Index(fields=["external_id_folded"], name="customer_index_external_id"),
            # Each sort within one state (active, the default, or archived) walks its own
            # index in order: a deep page skips index entries, not table rows, and never
            # reads the other state's (bench/README.md, issue 24).
            *(
                models.Index(
                    fields=[column, "id"],
                    name=f"customer_index_{state}_{short}",
                    condition=models.Q(archived_at__isnull=state == "active"),
                )
                for state in ("active", "arch")
                for column, short in (
                    ("name_folded", "name"),
                    ("created_at", "created"),
                    ("updated_at", "updated"),
                )
            ),
            # The billable filter's total counts index entries, not rows. Per state too: on
            # (billable_status, archived_at) SQLite skip-scans it for every active page.
            *(
                models.Index(
                    fields=["billable_status", "id"],
                    name=f"customer_index_{state}_billable",
                    condition=models.Q(archived_at__isnull=state == "active"),
                )
                for state in ("active", "arch")
            ),
        ]

    def __str__(self) -> str:
        return self.name


class IndexedNameWord(models.Model):
    """Every distinct folded word of the indexed names: the dictionary that a misspelt
    search word is corrected against."""

    word = models.CharField(max_length=255, primary_key=True)
    length = models.PositiveSmallIntegerField(db_index=True)

    def __str__(self) -> str:
        return self.word


class IndexedNameTrigram(models.Model):
    """The trigrams of each dictionary word (`customers.index.typos.word_trigrams`): a misspelt
    word is compared only with the words that share one of its trigrams, found through this
    index, never with the whole dictionary. A plain table, so SQLite and PostgreSQL find
    the same words."""

    trigram = models.CharField(max_length=3)
    word = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trigram", "word"], name="customer_index_trigram")
        ]

    def __str__(self) -> str:
        return self.trigram


class SyncRun(models.Model):
    """One run of `manage.py sync_customers`."""

    class Outcome(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        INTERRUPTED = "interrupted", "Interrupted"

    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    seen = models.PositiveIntegerField(default=0)
    inserted = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # How many active and archived customers the index held when this run finished: the
    # plain list's "of about N". NULL for a run that did not succeed (or ran before 0015).
    active_customers = models.PositiveIntegerField(null=True)
    archived_customers = models.PositiveIntegerField(null=True)
    # True while running, NULL after: the unique constraint lets one run at a time hold it.
    # This is the lock on SQLite (PostgreSQL uses an advisory lock); a run that died
    # without finishing is recognised by its old heartbeat and taken over.
    holds_lock = models.BooleanField(null=True, unique=True)
    heartbeat_at = models.DateTimeField(null=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = "customer index sync"

    def __str__(self) -> str:
        return f"sync at {self.started_at:%Y-%m-%d %H:%M} ({self.outcome})"


class SavedView(models.Model):
    """A named search staff come back to: its filters, toggle, sort and page size as
    validated URL parameters, and the columns chosen for the table and the CSV. Opened at
    `/customers/v/<slug>/`, a short URL that renaming or changing it keeps. Private to its
    owner unless shared with everyone on the dashboard (the team). The rules of who may do
    what are in customers/saved_views.py; the caps in settings (SAVED_VIEWS_PER_PERSON,
    SAVED_VIEWS_SHARED)."""

    slug = models.CharField(max_length=16, unique=True, editable=False)
    name = models.CharField(max_length=80)
    # A shared view outlives its owner's account (a manager still changes it); a private
    # one goes with it (see customers.saved_views.drop_private_views).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    shared = models.BooleanField(default=False)
    # {parameter: value}, canonical (customers.saved_views.canonical_state): what the list
    # page's URL holds for this search, without paging and without `columns`.
    params = models.JSONField(default=dict)
    # Column keys in order (customers.columns); empty: the standard table and CSV.
    columns = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(Lower("name"), "owner", name="saved_view_name_per_owner")
        ]

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def new_slug() -> str:
        # 8 characters of an unambiguous alphabet: 31^8, about 10^12, never guessed by chance.
        alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
        return "".join(secrets.choice(alphabet) for _ in range(8))


class LandingView(models.Model):
    """The saved view one person lands on after logging in (and at `/`)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    view = models.ForeignKey(SavedView, on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return f"{self.user_id} lands on {self.view_id}"


class SavedViewAudit(models.Model):
    """Who created, changed and deleted a shared view (or shared or unshared one): one row
    each, kept after the view and the account are gone, readable in the admin only."""

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        CHANGED = "changed", "Changed"
        DELETED = "deleted", "Deleted"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_username = models.CharField(max_length=150)
    action = models.CharField(max_length=16, choices=Action.choices)
    view = models.ForeignKey(SavedView, null=True, on_delete=models.SET_NULL, related_name="+")
    # Copied, so the record still says which view after it is deleted or renamed.
    view_slug = models.CharField(max_length=16)
    view_name = models.CharField(max_length=80)
    owner_username = models.CharField(max_length=150, blank=True)
    what = models.TextField(blank=True)  # "renamed from …; filters changed; unshared"

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = "shared view change"

    def __str__(self) -> str:
        return f"{self.actor_username} {self.action} {self.view_name!r}"


class WorkSlot(models.Model):
    """One piece of expensive work a person runs now (`customers.concurrency`): at most
    EXPENSIVE_WORK_PER_USER numbered rows per person, each gone on release or expiry."""

    holder = models.CharField(max_length=64)  # the person's primary key
    number = models.PositiveSmallIntegerField()
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["holder", "number"], name="one_holder_per_work_slot")
        ]

    def __str__(self) -> str:
        return f"slot {self.number} of {self.holder}"


class PasswordResetRequest(models.Model):
    """A password-reset email the dashboard agreed to send, for its hourly limits per
    address and per email address (customers.login_throttle): in the database, so every
    worker and instance counts the same ones. Rows older than an hour are deleted as new
    ones come. The email address is kept only as a hash: it is whatever was typed."""

    address = models.GenericIPAddressField(null=True)
    email_hash = models.CharField(max_length=64)
    requested_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["address", "requested_at"], name="password_reset_by_address"),
            models.Index(fields=["email_hash", "requested_at"], name="password_reset_by_email"),
        ]

    def __str__(self) -> str:
        return f"password reset at {self.requested_at:%Y-%m-%d %H:%M}"
