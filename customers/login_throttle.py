"""Who failed logins are counted against (django-axes' AXES_CLIENT_IP_CALLABLE,
AXES_USERNAME_CALLABLE and AXES_HANDLER), and the password pages throttled like the login.

The address:

Behind a proxy, REMOTE_ADDR is the proxy's own address: counting failures against it would
lock everybody out at once. Each proxy appends the address it received the request from to
X-Forwarded-For, so behind TRUSTED_PROXY_COUNT proxies the client is that many entries from
the right; entries further left were written by the client and prove nothing.
"""

import hashlib
import ipaddress
import logging
import threading
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.forms import PasswordChangeForm, PasswordResetForm
from django.contrib.auth.views import PasswordChangeView, PasswordResetView
from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone

from customers.models import PasswordResetRequest

logger = logging.getLogger(__name__)


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


class UsernameAndAddressHandler(AxesDatabaseHandler):
    """Axes' database handler with two limits (axes has one for all lockout parameters):
    AXES_FAILURE_LIMIT for one username from one address, the lockout parameter, and the
    higher AXES_ADDRESS_FAILURE_LIMIT for one address whatever the usernames, so one machine
    cannot guess its way through every account while an office behind NAT keeps working."""

    def get_failures(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        pair_failures = super().get_failures(request, credentials)
        limit = get_failure_limit(request, credentials)
        if pair_failures >= limit:
            return pair_failures
        address = getattr(request, "axes_ip_address", None) or client_ip_address(request)
        recent = AccessAttempt.objects.filter(
            ip_address=address, attempt_time__gte=get_cool_off_threshold(request)
        )
        address_failures = recent.aggregate(total=Sum("failures_since_start"))["total"] or 0
        # Axes compares one number with one limit: say "at the limit" when the address is.
        return limit if address_failures >= settings.AXES_ADDRESS_FAILURE_LIMIT else pair_failures


class ThrottledPasswordChangeForm(PasswordChangeForm):
    """Checks the old password through `authenticate`, so axes counts a wrong one as a failed
    login for this user from this address, and refuses once they are locked out."""

    def __init__(self, user: Any, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        super().__init__(user, *args, **kwargs)
        self.request = request

    def clean_old_password(self) -> str:
        old_password = self.cleaned_data["old_password"]
        authenticated = authenticate(
            self.request, username=self.user.get_username(), password=old_password
        )
        if authenticated is None or authenticated.pk != self.user.pk:
            raise ValidationError(
                self.error_messages["password_incorrect"], code="password_incorrect"
            )
        return old_password


class ThrottledPasswordChangeView(PasswordChangeView):
    form_class = ThrottledPasswordChangeForm

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}


class ThrottledPasswordResetView(PasswordResetView):
    """Only routed when email is configured. At most PASSWORD_RESET_LIMIT_PER_HOUR requests an
    hour from one address, and as many to one email address (so several addresses cannot
    fill one person's inbox), counted in the database: a count in a per-process cache let
    through the limit once per worker. The same answer, in the same time, for known and
    unknown email addresses: the email is sent after the response."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not _reset_allowed(client_ip_address(request), request.POST.get("email", "")):
            return render(request, "registration/password_reset_throttled.html", status=429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        options = {
            "use_https": self.request.is_secure(),
            "token_generator": self.token_generator,
            "from_email": self.from_email,
            "email_template_name": self.email_template_name,
            "subject_template_name": self.subject_template_name,
            "request": self.request,
            "html_email_template_name": self.html_email_template_name,
            "extra_email_context": self.extra_email_context,
        }
        # Looking the address up and sending take longer for a known address: do both
        # after answering, so the answer's timing tells nothing.
        threading.Thread(target=_send_reset_email, args=(form, options), daemon=True).start()
        return HttpResponseRedirect(self.get_success_url())


def _reset_allowed(address: str | None, email: str) -> bool:
    """Count this request against both limits, or refuse it without counting it. Counted
    first and taken back when over: two requests at once cannot both slip under a limit."""
    now = timezone.now()
    hour_ago = now - timedelta(hours=1)
    PasswordResetRequest.objects.filter(requested_at__lt=hour_ago).delete()
    email_hash = hashlib.sha256(email.strip().casefold().encode()).hexdigest()
    request = PasswordResetRequest.objects.create(
        address=address, email_hash=email_hash, requested_at=now
    )
    recent = PasswordResetRequest.objects.filter(requested_at__gte=hour_ago)
    limit: int = settings.PASSWORD_RESET_LIMIT_PER_HOUR
    if (
        recent.filter(address=address).count() > limit
        or recent.filter(email_hash=email_hash).count() > limit
    ):
        request.delete()
        return False
    return True


def _send_reset_email(form: PasswordResetForm, options: dict[str, Any]) -> None:
    try:
        form.save(**options)
    except Exception:
        logger.exception("password reset: the email could not be sent")
    finally:
        connections.close_all()
