"""Permissions read from Django's cache, so a page costs the session and user queries only.

Django's ModelBackend reads a user's permissions with two queries on every request that
checks one (the page checks two: view, and export for the download button). Here the set is
kept in the shared cache under a version that any change to users, groups or permissions
bumps, so a permission taken away is refused on the very next request, on every instance.
Without a shared cache (no CACHE_URL) nothing is cached: one worker's memory cannot tell the
others that a permission was taken away.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission, User
from django.core.cache import cache
from django.db.models.signals import m2m_changed, post_delete, post_save

VERSION_KEY = "permissions:version"
# Long enough to spare the queries, short enough that a missed bump ages out.
CACHE_SECONDS = 300


class CachedPermissionsBackend(ModelBackend):
    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        cached: set[str] | None = getattr(user_obj, "_perm_cache", None)  # ModelBackend's
        if cached is not None:
            return cached
        if not settings.CACHE_IS_SHARED:
            # A version bumped in one worker's memory would leave the others granting a
            # permission taken away: without a shared cache, read the database each time.
            return super().get_all_permissions(user_obj)
        key = f"permissions:{_version()}:{user_obj.pk}"
        permissions: set[str] | None = cache.get(key)
        if permissions is None:
            permissions = super().get_all_permissions(user_obj)
            cache.set(key, permissions, CACHE_SECONDS)
        user_obj._perm_cache = permissions
        return permissions


def _version() -> int:
    version = cache.get(VERSION_KEY)
    if version is None:
        cache.add(VERSION_KEY, 0, timeout=None)
        version = cache.get(VERSION_KEY, 0)
    return int(version)


def bump_version(**_: object) -> None:
    """Every cached permission set is stale: the next check reads the database again."""
    try:
        cache.incr(VERSION_KEY)
    except ValueError:  # no version yet: nothing cached under one either
        cache.add(VERSION_KEY, 1, timeout=None)


def connect_signals() -> None:
    for model in (User, Group, Permission):
        post_save.connect(bump_version, sender=model, dispatch_uid=f"permissions-save-{model}")
        post_delete.connect(bump_version, sender=model, dispatch_uid=f"permissions-del-{model}")
    for through in (User.groups.through, User.user_permissions.through, Group.permissions.through):
        m2m_changed.connect(bump_version, sender=through, dispatch_uid=f"permissions-m2m-{through}")
