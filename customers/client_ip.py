"""The address failed logins are counted against (django-axes' AXES_CLIENT_IP_CALLABLE).

Behind a proxy, REMOTE_ADDR is the proxy's own address: counting failures against it would
lock everybody out at once. Each proxy appends the address it received the request from to
X-Forwarded-For, so behind TRUSTED_PROXY_COUNT proxies the client is that many entries from
the right; entries further left were written by the client and prove nothing.
"""

import ipaddress

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
