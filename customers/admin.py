"""The CSV export audit log in the Django admin: readable by staff, changed by nobody."""

from typing import TYPE_CHECKING

from django.contrib import admin
from django.http import HttpRequest

from customers.models import ExportAudit

# ModelAdmin is generic only in django-stubs; at run time it cannot be subscripted.
if TYPE_CHECKING:
    ExportAuditAdminBase = admin.ModelAdmin[ExportAudit]
else:
    ExportAuditAdminBase = admin.ModelAdmin

admin.site.site_header = "Metronome customers: administration"
admin.site.site_title = "Metronome customers admin"
admin.site.index_title = "Users, groups and the CSV export log"


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
