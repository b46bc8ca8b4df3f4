"""The signed-in user and their permissions in one query, so a page costs the session and the
user queries only.

Django's ModelBackend loads the user with one query, then reads the permissions with two more
(the user's own and their groups') on every request that checks one, and the page checks two
(view, and export for the download button). Here the user's row comes back joined to the set
of their permissions, own and through groups. Read from the database on every request, a
permission taken away is refused on the very next request on every worker, with no cache to
invalidate.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User


class UserAndPermissionsBackend(ModelBackend):
    def get_user(self, user_id: Any) -> User | None:
        try:
            pk = int(user_id)
        except (TypeError, ValueError):  # a session carrying something that is not a user ID
            return None
        rows = list(User.objects.raw(USER_WITH_PERMISSIONS_SQL, [pk, pk, pk]))
        if not rows:
            return None
        user = rows[0]
        if not self.user_can_authenticate(user):
            return None
        if not user.is_superuser:
            # ModelBackend's own memo: has_perm reads it instead of querying. A superuser's
            # set is every permission, which has_perm grants without looking.
            # The raw query's extra columns are attributes of each row's instance.
            held = [vars(row) for row in rows]
            user._perm_cache = {  # type: ignore[attr-defined]
                f"{row['permission_app']}.{row['permission_codename']}"
                for row in held
                if row["permission_codename"] is not None
            }
        return user


# One row per permission the user holds (one row with NULLs when none), the user's columns on
# each: a LEFT JOIN onto the union of their own and their groups' permissions. The tables are
# django.contrib.auth's own (this project uses its User model), named as its migrations do.
USER_WITH_PERMISSIONS_SQL = """
SELECT u.*, perm.app_label AS permission_app, perm.codename AS permission_codename
FROM auth_user u
LEFT JOIN (
    SELECT held.user_id AS holder, ct.app_label, p.codename
    FROM auth_user_user_permissions held
    JOIN auth_permission p ON p.id = held.permission_id
    JOIN django_content_type ct ON ct.id = p.content_type_id
    WHERE held.user_id = %s
    UNION
    SELECT member.user_id, ct.app_label, p.codename
    FROM auth_user_groups member
    JOIN auth_group_permissions held ON held.group_id = member.group_id
    JOIN auth_permission p ON p.id = held.permission_id
    JOIN django_content_type ct ON ct.id = p.content_type_id
    WHERE member.user_id = %s
) perm ON perm.holder = u.id
WHERE u.id = %s
"""
