"""The 403 page, naming the permission that was refused and the groups that hold it.

Views guard themselves with `@requires("customers.<codename>")` instead of Django's
`@permission_required`: the refusal carries the permission, so the page names exactly what
this view needed, with no table to keep in step with the views. What the permission lets a
person do is its own name in the database ("Can download ...": customers/models.py), and the
groups holding it are read from the database too, so renaming a group in the admin, or
giving it a permission, keeps the page true."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

View = TypeVar("View", bound=Callable[..., Any])

# Every view `requires` guarded, by the function it wrapped: what a test walks the URLconf for.
_GUARDED: dict[Callable[..., Any], str] = {}


class Refused(PermissionDenied):
    """A view's permission is missing; `permission` is "app_label.codename"."""

    def __init__(self, permission: str) -> None:
        super().__init__(permission)
        self.permission = permission


def requires(permission: str) -> Callable[[View], View]:
    """Like `permission_required(permission, raise_exception=True)`, with the permission
    carried to the 403 page."""

    def decorator(view: View) -> View:
        @wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            if not request.user.has_perm(permission):
                raise Refused(permission)
            return view(request, *args, **kwargs)

        _GUARDED[guarded] = permission
        return guarded  # type: ignore[return-value]  # same signature as `view`

    return decorator


def required_permission(view: Callable[..., Any]) -> str | None:
    """The permission `requires` guards `view` with, through any other decorators."""
    current: Callable[..., Any] | None = view
    while current is not None:
        if current in _GUARDED:
            return _GUARDED[current]
        current = getattr(current, "__wrapped__", None)
    return None


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    context: dict[str, object] = {}
    if isinstance(exception, Refused):
        app_label, codename = exception.permission.split(".")
        permission = Permission.objects.filter(
            content_type__app_label=app_label, codename=codename
        ).first()
        name = permission.name if permission is not None else codename.replace("_", " ")
        context = {
            "action": name.removeprefix("Can ").rstrip("."),
            "permission": exception.permission,
            "groups": list(
                Group.objects.filter(permissions=permission)
                .order_by("name")
                .values_list("name", flat=True)
            )
            if permission is not None
            else [],
        }
    return render(request, "403.html", context, status=403)
