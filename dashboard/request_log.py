"""Request context for every log line, and one log line per request.

Each request gets an ID: the proxy's X-Request-ID when it sent a plausible one, else a new
one. It is echoed in the response header and added to every log line written while the
request is handled, with the user, so one request's lines can be found together.
"""

import logging
import re
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

logger = logging.getLogger("dashboard.request")

_request_id: ContextVar[str] = ContextVar("request_id", default="-")
_user: ContextVar[str] = ContextVar("user", default="-")
# What a proxy's ID may look like: anything else (markup, newlines, a novel) is replaced.
_PLAUSIBLE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Probes call these every few seconds: their successes would drown the log.
_PROBES = ("/healthz", "/readyz")
REDACTED = "[redacted]"


class RequestContextFilter(logging.Filter):
    """Adds request_id and user to each record, and removes the Metronome token from any
    message that contains it (no code logs it; this is the last line of defence)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        record.user = _user.get()
        token = getattr(settings, "METRONOME_BEARER_TOKEN", "") if settings.configured else ""
        if token:
            message = record.getMessage()
            if token in message:
                record.msg, record.args = message.replace(token, REDACTED), ()
        return True


class RequestLogMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _PLAUSIBLE_ID.fullmatch(incoming) else uuid.uuid4().hex
        id_token = _request_id.set(request_id)
        user_token = _user.set("-")
        started = time.monotonic()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            user = getattr(request, "user", None)
            username = user.get_username() if user is not None and user.is_authenticated else "-"
            _user.set(username)
            if not (request.path in _PROBES and response.status_code == 200):
                match = request.resolver_match
                # The path only: query strings can hold a customer's pasted IDs.
                logger.info(
                    "%s %s %s",
                    request.method,
                    request.path,
                    response.status_code,
                    extra={
                        "method": request.method,
                        "path": request.path,
                        "status": response.status_code,
                        "view": match.view_name if match else None,
                        "duration_ms": round((time.monotonic() - started) * 1000),
                    },
                )
            return response
        finally:
            _user.reset(user_token)
            _request_id.reset(id_token)
