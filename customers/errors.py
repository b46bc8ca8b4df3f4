"""The 403 page, naming the group that grants what was refused.

Django's own handler only knows that something was refused. The URL tells what: the pages
under /customers/ need the permission of their view's `@permission_required`, and the groups
holding that permission are read from the database, so renaming a group in the admin keeps
the page true."""

from django.contrib.auth.models import Group
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

# URL name -> (permission, what it lets a person do). Keep in step with the views' decorators.
GUARDED_VIEWS = {
    "customers:export": ("customers.export_customers", "download customers as CSV"),
    "customers:export_report": ("customers.export_customers", "download a match report as CSV"),
}
VIEW_CUSTOMERS = ("customers.view_customers", "see customers")


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    match = getattr(request, "resolver_match", None)
    view_name = match.view_name if match else ""
    guarded = GUARDED_VIEWS.get(view_name)
    if guarded is None and view_name.startswith("customers:"):
        guarded = VIEW_CUSTOMERS
    context: dict[str, object] = {}
    if guarded:
        permission, action = guarded
        app_label, codename = permission.split(".")
        context = {
            "action": action,
            "groups": list(
                Group.objects.filter(
                    permissions__content_type__app_label=app_label,
                    permissions__codename=codename,
                )
                .order_by("name")
                .values_list("name", flat=True)
            ),
        }
    return render(request, "403.html", context, status=403)
