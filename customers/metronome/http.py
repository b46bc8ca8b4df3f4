"""The client's HTTP: one pooled httpx.Client, `GET` with the official SDKs' retry rules,
each answer bounded in time and size, and every failure mapped to a `MetronomeError`.
The resource areas (`customers.py`, `invoices.py`) build on `HTTPClient._get`.

Reference: https://docs.metronome.com/api-reference and the SDKs' `_base_client.py`.
"""

from __future__ import annotations

import contextlib
import email.utils
import itertools
import json
import logging
import math
import random
import re
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlencode

import httpx

from customers.metronome import calls
from customers.metronome.bounds import PagingLimits
from customers.metronome.errors import (
    BadRequest,
    MalformedResponse,
    MetronomeError,
    MetronomeTimeout,
    MetronomeUnavailable,
    RateLimited,
    TokenRejected,
    not_found_or,
)
from customers.metronome.redaction import answer_quotes_token, redact
from customers.metronome.wire import LONE_SURROGATE, parse_json

# One logger for the whole client, as before the split: log filters name it.
logger = logging.getLogger(__package__)

# The process's client is given the dashboard's name and version (customers/wiring.py).
DEFAULT_USER_AGENT = "metronome-customer-dashboard"

# Retry rules copied from the official SDKs (metronome-sdk's _base_client.py).
RETRYABLE_STATUSES = frozenset({408, 409, 429})
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_HONOURED_RETRY_AFTER = 60.0
# Metronome may answer an empty page that still has a cursor; a run this long means a loop.
MAX_CONSECUTIVE_EMPTY_PAGES = 50
# Metronome's answers are untrusted input. A page of 100 customers is tens of kilobytes; an
# answer this large is broken or hostile, and reading it whole would hold a worker's memory.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
# One attempt may take at most this long from sending to the last byte, however slowly the
# bytes trickle in: the read timeout alone restarts with every byte.
DEFAULT_DEADLINE = 30.0


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        pass


class _CookielessClient(httpx.Client):
    """An httpx.Client that keeps no cookies. One client serves every call of every person,
    so a cookie one answer set would go with every later call, whoever made it; Metronome's
    API sets none. Not reading them also spares each answer httpx's cookie handling, which
    builds a urllib request to look for `Set-Cookie`: about a twelfth of the CPU an export
    spent fetching its pages (bench/README.md, twentieth pass)."""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NoCookies()

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        raise TypeError("The Metronome client keeps no cookies.")


class HTTPClient:
    """The connection and the request rules every resource area shares."""

    def __init__(
        self,
        *,
        base_url: str,
        bearer_token: str,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        max_retries: int = 2,
        retry_budget: float = 20.0,
        deadline: float = DEFAULT_DEADLINE,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        transport: httpx.BaseTransport | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        sleep: Callable[[float], None] = time.sleep,
        paging_limits: PagingLimits | None = None,
    ) -> None:
        self._token = bearer_token
        self._folded_token = bearer_token.encode().lower()
        self._paging_limits = paging_limits or PagingLimits()
        self._timeout = timeout
        self._max_retries = max_retries
        self._retry_budget = retry_budget
        self._deadline = deadline
        self._max_response_bytes = max_response_bytes
        self._sleep = sleep
        self._http = _CookielessClient(
            base_url=base_url,
            headers={
                "Authorization": f"Bearer {bearer_token}",
                "Accept": "application/json",
                "User-Agent": user_agent,
            },
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            transport=transport,
        )
        # As httpx joins it to a path: its own path ends in a slash (which str() leaves out
        # of a bare host's), the path's leading slash dropped.
        base_url_text = str(self._http.base_url)
        self._base_url = base_url_text if base_url_text.endswith("/") else f"{base_url_text}/"

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str, params: Mapping[str, str]) -> object:
        return self._request("GET", path, params)

    def _post(self, path: str, body: Mapping[str, object], params: Mapping[str, str]) -> object:
        """A POST that only reads (Metronome lists contracts, balances, alerts and usage so):
        retried like a GET, as the SDKs do."""
        return self._request("POST", path, params, body)

    def post_for_customer(
        self,
        customer_id: str,
        path: str,
        body: Mapping[str, object],
        params: Mapping[str, str] | None = None,
    ) -> object:
        """A read-only POST about one customer (the customer page's lists): its JSON, with a
        404 meaning the customer does not exist."""
        try:
            return self._post(path, body, params or {})
        except BadRequest as error:
            raise not_found_or(error, customer_id) from None

    def _request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        body: Mapping[str, object] | None = None,
        *,
        decode: Callable[[bytes], object] = parse_json,
    ) -> object:
        """One call with the official SDKs' retry rules, bounded by count and by total waiting;
        each attempt bounded in time and size, its JSON checked (`decode`: `parse_json`, or
        a reader that checks as it parses) before anyone reads it."""
        give_up_at = time.monotonic() + self._retry_budget
        for attempt in itertools.count(1):
            started = time.monotonic()
            retry_after: float | None = None
            try:
                response, content = self._send(method, path, params, body, started + self._deadline)
            except httpx.TimeoutException:
                self._log(method, path, "timeout", started, attempt)
                error: MetronomeError = MetronomeTimeout(
                    f"Metronome did not answer in {self._timeout:g} s. Try again in a minute."
                )
                should_retry = True
            except _DeadlinePassed:
                self._log(method, path, "deadline passed", started, attempt)
                error = MetronomeTimeout(
                    f"Metronome's answer took longer than {self._deadline:g} s to arrive. "
                    "Try again in a minute."
                )
                should_retry = True
            except httpx.TransportError as exc:
                self._log(
                    method, path, f"connection error ({type(exc).__name__})", started, attempt
                )
                error = MetronomeUnavailable(
                    "The dashboard could not reach Metronome. Try again in a minute; if it "
                    "keeps happening, check the server's network and METRONOME_BASE_URL."
                )
                should_retry = True
            else:
                self._log(method, path, response.status_code, started, attempt)
                if response.is_success:
                    if answer_quotes_token(content, self._folded_token):
                        raise self._quoted_token(method, path)
                    return decode(content)
                retry_after = _retry_after_seconds(response.headers)
                error = self._error_for(path, response, content, retry_after)
                should_retry = _should_retry(response)
            if not should_retry or attempt > self._max_retries:
                raise error
            delay = (
                retry_after
                if retry_after is not None and 0 < retry_after <= MAX_HONOURED_RETRY_AFTER
                else _backoff_delay(attempt)
            )
            if time.monotonic() + delay > give_up_at:
                raise error
            self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _get_page(
        self, path: str, params: Mapping[str, str], *, limit: int, noun: str
    ) -> tuple[list[object], str | None]:
        """One page of a listing as Metronome sent it: its items (each still to be read) and
        its cursor, the page itself checked: a list of no more than `limit`, a string cursor."""
        return checked_page(self._get(path, params), limit=limit, noun=noun)

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        body: Mapping[str, object] | None,
        deadline: float,
    ) -> tuple[httpx.Response, bytes]:
        """One attempt: the response and its body, read until `deadline` at the latest and
        never past `max_response_bytes` (gzip included: the limit is on what it unpacks to)."""
        request = self._http.build_request(method, self._url(path, params), json=body)
        with contextlib.closing(self._http.send(request, stream=True)) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self._max_response_bytes:
                raise _too_large(self._max_response_bytes)
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > self._max_response_bytes:
                    raise _too_large(self._max_response_bytes)
                if time.monotonic() > deadline:
                    raise _DeadlinePassed
                chunks.append(chunk)
        return response, b"".join(chunks)

    @staticmethod
    def _quoted_token(method: str, path: str) -> MalformedResponse:
        # Not retried, and none of it kept: whatever the answer held stays out of pages,
        # files and the index. The token may have been seen by whoever wrote it there.
        logger.error(
            "Metronome's answer to %s %s contained the API token; it was not used. "
            "Consider replacing METRONOME_BEARER_TOKEN.",
            method,
            path,
        )
        return MalformedResponse(
            "Metronome's answer contained the dashboard's API token, so it was not shown. "
            "Tell whoever runs the dashboard."
        )

    def _url(self, path: str, params: Mapping[str, str] | None = None) -> str:
        """The call's whole URL, as httpx would join it and encode `params`: httpx parses a
        URL three times when it joins a path and parameters to its base URL, about 30 µs a
        call (bench/README.md, twentieth pass)."""
        query = f"?{urlencode(params)}" if params else ""
        return f"{self._base_url}{path.lstrip('/')}{query}"

    def _log(self, method: str, path: str, outcome: object, started: float, attempt: int) -> None:
        # Method, path, outcome, duration and attempt: never headers, so never the token.
        # DEBUG: a pasted-ID search makes a dozen calls; the request's one INFO line counts
        # them (customers/metronome/calls.py, dashboard/request_log.py).
        elapsed = time.monotonic() - started
        calls.record(elapsed)
        if not logger.isEnabledFor(logging.DEBUG):
            return
        elapsed_ms = elapsed * 1000
        logger.debug(
            "%s %s -> %s in %.0f ms (attempt %d)",
            method,
            path,
            outcome,
            elapsed_ms,
            attempt,
            extra={
                "path": path,
                "status": str(outcome),
                "duration_ms": round(elapsed_ms),
                "attempt": attempt,
            },
        )

    def _error_for(
        self, path: str, response: httpx.Response, content: bytes, retry_after: float | None
    ) -> MetronomeError:
        """Our own words for the status, with Metronome's request ID when it sent one:
        Metronome's message is never shown (it may quote the token, in any encoding), only
        logged for operators, redacted."""
        status = response.status_code
        request_id = _request_id(response.headers)
        if request_id is not None and redact(request_id, self._token) != request_id:
            request_id = None  # an ID that carries the token is no ID to show or log
        logger.warning(
            "Metronome answered HTTP %s to %s %s (request ID %s): %s",
            status,
            _method(response),
            path,
            request_id or "none",
            redact(_api_message(content), self._token) or "(no message)",
            extra={"path": path, "status": str(status), "metronome_request_id": request_id},
        )
        reference = f" Metronome's request ID: {request_id}." if request_id else ""
        if status in (401, 403):
            return TokenRejected(
                f"Metronome rejected the API token (HTTP {status}). An administrator needs "
                f"to check METRONOME_BEARER_TOKEN.{reference}"
            )
        if status == 429:
            # Metronome's number reaches people and the CSV's Retry-After header: never more
            # than this client would wait itself.
            shown = _clamped(retry_after, self._retry_budget)
            wait = f"in {max(1, math.ceil(shown))} s" if shown else "in a minute"
            return RateLimited(
                f"Metronome is rate limiting us, try again {wait}.{reference}", shown
            )
        if status >= 500 or status in RETRYABLE_STATUSES:
            return MetronomeUnavailable(
                f"Metronome is not answering normally (HTTP {status}). Try again in a "
                f"minute.{reference}"
            )
        what = REFUSALS.get(status, "Metronome refused the request")
        return BadRequest(
            f"{what} (HTTP {status}). If this keeps happening, tell the dashboard's "
            f"developers.{reference}",
            status,
        )


# Our words for the refusals a person may meet; any other 4xx is "refused the request".
REFUSALS = {
    400: "Metronome refused the request as not valid",
    404: "Metronome has nothing at that address",
    413: "Metronome refused the request as too large",
    414: "Metronome refused the request as too long",
    422: "Metronome could not process the request",
}
# Metronome's request ID, shown to people so support can quote it: only a plausible one.
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,99}")


def _method(response: httpx.Response) -> str:
    try:
        return response.request.method
    except RuntimeError:  # a response built without its request
        return "GET"


def _request_id(headers: httpx.Headers) -> str | None:
    for name in ("x-request-id", "request-id"):
        value = str(headers.get(name, "")).strip()
        if value and _REQUEST_ID.fullmatch(value):
            return value
    return None


def _clamped(seconds: float | None, ceiling: float) -> float | None:
    """A Retry-After between 0 and `ceiling`; None when it says nothing usable."""
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        return None
    return min(seconds, ceiling) if ceiling > 0 else None


class _DeadlinePassed(Exception):
    """An attempt's answer was still arriving at its deadline."""


def _too_large(limit: int) -> MalformedResponse:
    return MalformedResponse(
        f"Metronome sent an answer larger than {limit // (1024 * 1024)} MB, which the "
        "dashboard does not read. If this keeps happening, tell the dashboard's developers."
    )


def _api_message(content: bytes) -> str:
    """What Metronome said about a failure, for the log only (after redaction): the JSON's
    `message`, else the start of the body."""
    try:
        message = json.loads(content).get("message", "")
    except (ValueError, AttributeError, RecursionError):
        message = content[:1000].decode("utf-8", errors="replace")
    if not isinstance(message, str):
        return ""
    return LONE_SURROGATE.sub("\ufffd", message)


def checked_page(body: object, *, limit: int, noun: str) -> tuple[list[object], str | None]:
    """A listing page's items (each still to be read) and cursor: a list of no more than
    `limit`, a string cursor or none."""
    article = "an" if noun[0] in "aeiou" else "a"
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise MalformedResponse(
            f"Metronome sent {article} {noun} list the dashboard could not read. "
            "If this keeps happening, tell the dashboard's developers."
        )
    next_page = body.get("next_page")
    if next_page is not None and not isinstance(next_page, str):
        raise MalformedResponse("Metronome sent a page cursor the dashboard could not read.")
    check_page_size(len(body["data"]), limit=limit, noun=noun)
    return body["data"], next_page or None


def check_page_size(count: int, *, limit: int, noun: str) -> None:
    if count > limit:
        # A server that ignores `limit` could send the whole account for a 50-row page.
        raise MalformedResponse(
            f"Metronome sent {count:,} {noun}s for a page of {limit}; the dashboard shows no "
            "page it did not ask for. If this keeps happening, tell the dashboard's developers."
        )


def _should_retry(response: httpx.Response) -> bool:
    override = str(response.headers.get("x-should-retry", "")).lower()
    if override in ("true", "false"):
        return override == "true"
    return response.status_code in RETRYABLE_STATUSES or response.status_code >= 500


def _retry_after_seconds(headers: httpx.Headers) -> float | None:
    """`retry-after-ms`, then `Retry-After` in seconds or as an HTTP date, as the SDKs read them."""
    try:
        milliseconds = float(headers["retry-after-ms"])
    except (KeyError, ValueError):
        pass
    else:
        if math.isfinite(milliseconds):
            return milliseconds / 1000
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return seconds if math.isfinite(seconds) else None


def _backoff_delay(attempt: int) -> float:
    """Exponential from 0.5 s, capped at 8 s, less up to 25 % jitter: the SDKs' formula."""
    delay: float = min(INITIAL_RETRY_DELAY * 2 ** (attempt - 1), MAX_RETRY_DELAY)
    return delay * (1 - 0.25 * random.random())
