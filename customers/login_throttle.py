"""Who failed logins are counted against: django-axes' AXES_CLIENT_IP_CALLABLE and
AXES_USERNAME_CALLABLE.

The address:

Behind a proxy, REMOTE_ADDR is the proxy's own address: counting failures against it would
lock everybody out at once. Each proxy appends the address it received the request from to
X-Forwarded-For, so behind TRUSTED_PROXY_COUNT proxies the client is that many entries from
the right; entries further left were written by the client and prove nothing.
"""

import ipaddress
from collections.abc import Mapping

from django.conf import settings
from django.http import HttpRequest


def client_ip_address(request: HttpRequest) -> str | None:
    remote_addr = request.META.get("REMOTE_ADDR")
    proxies = settings.TRUSTED_PROXY_COUNT
    if not proxies:
        return remote_addr
    forwarded = [
        part.strip()
        for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if part.strip()
    ]
    if len(forwarded) < proxies:
        # Not through every proxy (a health probe, a misconfiguration): nothing to trust.
        return remote_addr
    candidate = forwarded[-proxies]
    try:
        # Axes stores it in a GenericIPAddressField.
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote_addr


# Axes stores usernames in 255-character columns; Django's usernames have at most 150.
USERNAME_LENGTH = 150


def client_username(
    request: HttpRequest, credentials: Mapping[str, object] | None = None
) -> str | None:
    """The username as axes reads it by default, cut to the length a username can have.
    Django's login form lets a longer one through to `authenticate`, and axes' INSERT of it
    would fail on PostgreSQL (a 500 instead of "wrong password")."""
    field: str = getattr(settings, "AXES_USERNAME_FORM_FIELD", "username")
    username = credentials.get(field) if credentials else request.POST.get(field)
    return username[:USERNAME_LENGTH] if isinstance(username, str) else None
