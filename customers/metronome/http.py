"""The client's HTTP: one pooled httpx.Client, `GET` with the official SDKs' retry rules,
each answer bounded in time and size, and every failure mapped to a `MetronomeError`.
The resource areas (`customers.py`, `invoices.py`) build on `HTTPClient._get`.

Reference: https://docs.metronome.com/api-reference and the SDKs' `_base_client.py`.
"""

from __future__ import annotations

import email.utils
import html
import itertools
import json
import logging
import math
import random
import time
import urllib.parse
from collections.abc import Callable, Mapping

import httpx

from customers.metronome.errors import (
    BadRequest,
    MalformedResponse,
    MetronomeError,
    MetronomeTimeout,
    MetronomeUnavailable,
    RateLimited,
    TokenRejected,
)
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
    ) -> None:
        self._token = bearer_token
        self._timeout = timeout
        self._max_retries = max_retries
        self._retry_budget = retry_budget
        self._deadline = deadline
        self._max_response_bytes = max_response_bytes
        self._sleep = sleep
        self._http = httpx.Client(
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

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str, params: Mapping[str, str]) -> object:
        """GET with the official SDKs' retry rules, bounded by count and by total waiting;
        each attempt bounded in time and size, its JSON checked before anyone reads it."""
        give_up_at = time.monotonic() + self._retry_budget
        for attempt in itertools.count(1):
            started = time.monotonic()
            retry_after: float | None = None
            try:
                response, content = self._send(path, params, started + self._deadline)
            except httpx.TimeoutException:
                self._log(path, "timeout", started, attempt)
                error: MetronomeError = MetronomeTimeout(
                    f"Metronome did not answer in {self._timeout:g} s. Try again in a minute."
                )
                should_retry = True
            except _DeadlinePassed:
                self._log(path, "deadline passed", started, attempt)
                error = MetronomeTimeout(
                    f"Metronome's answer took longer than {self._deadline:g} s to arrive. "
                    "Try again in a minute."
                )
                should_retry = True
            except httpx.TransportError as exc:
                self._log(path, f"connection error ({type(exc).__name__})", started, attempt)
                error = MetronomeUnavailable(
                    "The dashboard could not reach Metronome. Try again in a minute; if it "
                    "keeps happening, check the server's network and METRONOME_BASE_URL."
                )
                should_retry = True
            else:
                self._log(path, response.status_code, started, attempt)
                if response.is_success:
                    return parse_json(content)
                retry_after = _retry_after_seconds(response.headers)
                error = self._error_for(response.status_code, content, retry_after)
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
        body = self._get(path, params)
        article = "an" if noun[0] in "aeiou" else "a"
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise MalformedResponse(
                f"Metronome sent {article} {noun} list the dashboard could not read. "
                "If this keeps happening, tell the dashboard's developers."
            )
        next_page = body.get("next_page")
        if next_page is not None and not isinstance(next_page, str):
            raise MalformedResponse("Metronome sent a page cursor the dashboard could not read.")
        if len(body["data"]) > limit:
            # A server that ignores `limit` could send the whole account for a 50-row page.
            raise MalformedResponse(
                f"Metronome sent {len(body['data']):,} {noun}s for a page of {limit}; the "
                "dashboard shows no page it did not ask for. If this keeps happening, tell "
                "the dashboard's developers."
            )
        return body["data"], next_page or None

    def _send(
        self, path: str, params: Mapping[str, str], deadline: float
    ) -> tuple[httpx.Response, bytes]:
        """One attempt: the response and its body, read until `deadline` at the latest and
        never past `max_response_bytes` (gzip included: the limit is on what it unpacks to)."""
        with self._http.stream("GET", path, params=params) as response:
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

    def _log(self, path: str, outcome: object, started: float, attempt: int) -> None:
        # Method, path, outcome, duration and attempt: never headers, so never the token.
        elapsed_ms = (time.monotonic() - started) * 1000
        logger.info(
            "GET %s -> %s in %.0f ms (attempt %d)",
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

    def _error_for(self, status: int, content: bytes, retry_after: float | None) -> MetronomeError:
        if status in (401, 403):
            return TokenRejected(
                f"Metronome rejected the API token (HTTP {status}). An administrator needs "
                "to check METRONOME_BEARER_TOKEN."
            )
        if status == 429:
            wait = f"in {max(1, round(retry_after))} s" if retry_after else "in a minute"
            return RateLimited(f"Metronome is rate limiting us, try again {wait}.", retry_after)
        if status >= 500 or status in RETRYABLE_STATUSES:
            return MetronomeUnavailable(
                f"Metronome is not answering normally (HTTP {status}). Try again in a minute."
            )
        api_message = _api_message(content, self._token)
        detail = f": {api_message}" if api_message else "."
        return BadRequest(f"Metronome refused the request (HTTP {status}){detail}", status)


class _DeadlinePassed(Exception):
    """An attempt's answer was still arriving at its deadline."""


def _too_large(limit: int) -> MalformedResponse:
    return MalformedResponse(
        f"Metronome sent an answer larger than {limit // (1024 * 1024)} MB, which the "
        "dashboard does not read. If this keeps happening, tell the dashboard's developers."
    )


def _api_message(content: bytes, token: str) -> str:
    """The `message` of an error answer, to show a person; withheld whole when it quotes the
    token in any spelling (case changed, percent- or HTML-encoded), since a partial
    redaction of an unknown encoding is a guess."""
    try:
        message = json.loads(content).get("message", "")
    except (ValueError, AttributeError, RecursionError):
        return ""
    if not isinstance(message, str):
        return ""
    message = LONE_SURROGATE.sub("\ufffd", message)
    if token and _mentions_token(message, token):
        return "(Metronome's message is not shown: it quoted the API token)"
    return message[:300]


def _mentions_token(text: str, token: str) -> bool:
    wanted = token.casefold()
    for _ in range(4):  # percent-encoding inside percent-encoding, a few levels deep
        decoded = html.unescape(urllib.parse.unquote_plus(text))
        if wanted in text.casefold() or wanted in decoded.casefold():
            return True
        if decoded == text:
            return False
        text = decoded
    return wanted in text.casefold()


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
