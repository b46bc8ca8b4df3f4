"""Request context for every log line, and one log line per request.

Each request gets an ID: the proxy's X-Request-ID when it sent a plausible one, else a new
one. It is echoed in the response header and added to every log line written while the
request is handled, with the user, so one request's lines can be found together.

The request's line (INFO) also says how many calls to Metronome it made and their summed
time (`api_calls`, `api_ms`); each call's own line is DEBUG. A streamed response (the CSV
export) is logged when its body ends, so its line counts every page and the whole duration.
"""

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import cast

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase, StreamingHttpResponse

from customers.metronome import calls

logger = logging.getLogger("dashboard.request")

_request_id: ContextVar[str] = ContextVar("request_id", default="-")
_request: ContextVar[HttpRequest | None] = ContextVar("request", default=None)
# What a proxy's ID may look like: anything else (markup, newlines, a novel) is replaced.
_PLAUSIBLE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Pasted ID lists: logged as a count, never the IDs (a customer's data, in bulk).
_ID_LIST_FIELDS = ("customer_ids", "salesforce_account_ids")
_ID_SEPARATORS = re.compile(r"[\s,;]+")
# Probes call these every few seconds: their successes would drown the log.
_PROBES = ("/healthz", "/readyz")
REDACTED = "[redacted]"


class RequestContextFilter(logging.Filter):
    """Adds request_id and user to each record, shortens Django's own `request` field to
    method and path (its repr has the query string: pasted IDs), and removes the Metronome
    token from any message that contains it (no code logs it; this is the last defence)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        record.user = _username(_request.get())
        logged_request = getattr(record, "request", None)
        if isinstance(logged_request, HttpRequest):
            record.request = f"{logged_request.method} {logged_request.path}"
        token = getattr(settings, "METRONOME_BEARER_TOKEN", "") if settings.configured else ""
        if token:
            message = record.getMessage()
            if token in message:
                record.msg, record.args = message.replace(token, REDACTED), ()
        return True


def _pasted_id_count(request: HttpRequest) -> int:
    # POST only when the view already read it: a form field, never a file upload.
    sources = [request.GET]
    if request.method == "POST" and hasattr(request, "_post"):
        sources.append(request.POST)
    return sum(
        len([value for value in _ID_SEPARATORS.split(text) if value])
        for source in sources
        for field in _ID_LIST_FIELDS
        for text in source.getlist(field)
    )


def _username(request: HttpRequest | None) -> str:
    # Only once authentication has looked the user up (it caches it on the request): reading
    # `request.user` here could query the database from inside a log call.
    user = getattr(request, "_cached_user", None)
    return user.get_username() if user is not None and user.is_authenticated else "-"


class RequestLogMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _PLAUSIBLE_ID.fullmatch(incoming) else uuid.uuid4().hex
        id_token = _request_id.set(request_id)
        request_token = _request.set(request)
        started = time.monotonic()
        try:
            with calls.counting() as tally:
                response = self.get_response(request)
            response["X-Request-ID"] = request_id
            if request.path in _PROBES and response.status_code == 200:
                return response
            if isinstance(response, StreamingHttpResponse) and not response.is_async:
                response.streaming_content = _logged_at_end(
                    cast(Iterator[bytes], response.streaming_content),
                    request,
                    response,
                    request_id,
                    started,
                    tally,
                )
            else:
                _log_request(request, response, started, tally)
            return response
        finally:
            _request.reset(request_token)
            _request_id.reset(id_token)


def _log_request(
    request: HttpRequest, response: HttpResponseBase, started: float, tally: calls.CallTally
) -> None:
    match = request.resolver_match
    api_ms = round(tally.seconds * 1000)
    # The path only: query strings can hold a customer's pasted IDs.
    logger.info(
        "%s %s %s (%d API calls, %d ms)",
        request.method,
        request.path,
        response.status_code,
        tally.count,
        api_ms,
        extra={
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "view": match.view_name if match else None,
            "pasted_ids": _pasted_id_count(request),
            "duration_ms": round((time.monotonic() - started) * 1000),
            "api_calls": tally.count,
            "api_ms": api_ms,
        },
    )


def _logged_at_end(
    body: Iterator[bytes],
    request: HttpRequest,
    response: HttpResponseBase,
    request_id: str,
    started: float,
    tally: calls.CallTally,
) -> Iterator[bytes]:
    """The body as it was; the request's line once the server has read it to the end (or
    stopped reading), in the request's log context, which is gone by then otherwise."""
    try:
        yield from body
    finally:
        id_token = _request_id.set(request_id)
        request_token = _request.set(request)
        try:
            _log_request(request, response, started, tally)
        finally:
            _request.reset(request_token)
            _request_id.reset(id_token)
