"""The audit logs in the Django admin (CSV exports, changes to shared views) and the saved
views themselves: readable by staff, changed by nobody here (views change on their own
pages, which check who may and write the audit)."""

from typing import TYPE_CHECKING

from django.contrib import admin
from django.http import HttpRequest

from customers.models import ExportAudit, SavedView, SavedViewAudit

# ModelAdmin is generic only in django-stubs; at run time it cannot be subscripted.
if TYPE_CHECKING:
    ExportAuditAdminBase = admin.ModelAdmin[ExportAudit]
    SavedViewAdminBase = admin.ModelAdmin[SavedView]
    SavedViewAuditAdminBase = admin.ModelAdmin[SavedViewAudit]
else:
    ExportAuditAdminBase = SavedViewAdminBase = SavedViewAuditAdminBase = admin.ModelAdmin

admin.site.site_header = "Metronome customers: administration"
admin.site.site_title = "Metronome customers admin"
admin.site.index_title = "Users, groups, saved views and the audit logs"


@admin.register(ExportAudit)
class ExportAuditAdmin(ExportAuditAdminBase):
    """Read-only for everyone, superusers included: an audit log that can be edited is not
    evidence. Rows are written only by the export view."""

    list_display = ("username", "user", "started_at", "outcome", "rows_written", "duration")
    list_filter = ("outcome", "started_at", "username")
    search_fields = ("username",)
    date_hierarchy = "started_at"
    fields = (
        "username",
        "user",
        "started_at",
        "outcome",
        "rows_written",
        "duration",
        "filters",
        "error",
    )
    readonly_fields = fields
    list_select_related = ("user",)
    actions = None

    @admin.display(description="Duration", ordering="duration_ms")
    def duration(self, audit: ExportAudit) -> str | None:
        if audit.duration_ms is None:
            return None  # shown as the admin's empty value
        return f"{audit.duration_ms / 1000:.1f} s"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ExportAudit | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ExportAudit | None = None) -> bool:
        return False


class ReadOnly:
    """Nobody adds, changes or deletes rows here, superusers included."""

    actions = None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(SavedViewAudit)
class SavedViewAuditAdmin(ReadOnly, SavedViewAuditAdminBase):  # type: ignore[misc]
    """Who created, changed and deleted shared views: evidence, so read-only."""

    list_display = ("at", "actor_username", "action", "view_name", "view_slug", "what")
    list_filter = ("action", "at")
    search_fields = ("actor_username", "view_name", "view_slug", "owner_username")
    date_hierarchy = "at"
    fields = (
        "at",
        "actor_username",
        "actor",
        "action",
        "view_name",
        "view_slug",
        "view",
        "owner_username",
        "what",
    )
    readonly_fields = fields
    list_select_related = ("actor",)


@admin.register(SavedView)
class SavedViewAdmin(ReadOnly, SavedViewAdminBase):  # type: ignore[misc]
    list_display = ("name", "slug", "owner", "shared", "updated_at")
    list_filter = ("shared",)
    search_fields = ("name", "slug", "owner__username")
    fields = ("name", "slug", "owner", "shared", "params", "columns", "created_at", "updated_at")
    readonly_fields = fields
    list_select_related = ("owner",)
