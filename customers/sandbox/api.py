"""A deterministic fake of Metronome's `GET /v1/customers` API, with fault injection.

`SandboxAPI.handle` is pure request-in, response-out, so the same code answers in-process
(through `SandboxTransport`, an httpx transport) and over a real socket (`server.py`).

Where Metronome's documentation is silent, the sandbox makes these choices:
- `limit` defaults to 50 when absent;
- results are ordered by `created_at`, then `id`;
- `ingest_alias` matches exactly (case-sensitive);
- an empty parameter value (`customer_ids=`, which the SDK sends for an empty list) is
  the same as leaving the parameter out;
- a known parameter sent twice is a 400: the SDKs send arrays as one comma-joined value,
  and a client that repeats keys instead would silently lose filters against a server
  that keeps only one of them, so the sandbox makes that mistake loud;
- unknown parameters are ignored;
- a malformed customer ID in the path (`/v1/customers/not-a-uuid`) is a 404.

The invoices' choices are in `invoices_api.py`; fault settings in `faults.py`; what every
endpoint shares (JSON answers, cursors, query parsing) in `wire.py`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import math
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import httpx

from .data import generate_customers
from .faults import Faults
from .invoices import generate_invoices
from .invoices_api import INVOICE_PARAMS, invoice_date, select_invoices
from .wire import (
    JSON_HEADERS,
    BadRequest,
    Response,
    decode_cursor,
    encode_cursor,
    error_response,
    json_response,
    parse_limit,
    parse_query,
)

__all__ = ["SANDBOX_TOKEN", "Faults", "SandboxAPI", "SandboxTransport"]

# Public on purpose: the sandbox only ever holds fake data.
SANDBOX_TOKEN = "sandbox-token"  # noqa: S105

# The spec's maxItems for both array filters.
MAX_ARRAY_ITEMS = 100
# Distinct filter combinations whose result lists stay cached: enough for a few concurrent
# exports plus the dashboard's searches, small enough to bound memory at 100k customers.
FILTER_CACHE_SIZE = 32

_KNOWN_PARAMS = frozenset(
    {
        "customer_ids",
        "salesforce_account_ids",
        "ingest_alias",
        "only_archived",
        "limit",
        "next_page",
    }
)
# Customers whose generated invoices stay cached: what a few people browsing need.
INVOICE_CACHE_SIZE = 256
_CUSTOMER_PATH = re.compile(r"/v1/customers/([^/]+)")
_INVOICES_PATH = re.compile(r"/v1/customers/([^/]+)/invoices")


@dataclasses.dataclass(frozen=True)
class _Filters:
    """The filters of a list request, normalised so equal queries compare equal."""

    customer_ids: tuple[str, ...] | None
    salesforce_account_ids: tuple[str, ...] | None
    ingest_alias: str | None
    only_archived: bool

    def digest(self) -> str:
        # Binds a cursor to the filters it was issued for; 12 hex chars is plenty to tell
        # filter sets apart and keeps cursors short.
        raw = json.dumps(dataclasses.astuple(self), separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()[:12]


def _is_archived(customer: Mapping[str, Any]) -> bool:
    return customer.get("archived_at") is not None


def _parse_array(name: str, value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = [item.strip() for item in value.split(",") if item.strip()]
    if len(items) > MAX_ARRAY_ITEMS:
        raise BadRequest(f"{name} accepts at most {MAX_ARRAY_ITEMS} values, got {len(items)}")
    return tuple(sorted(set(items))) or None


def _parse_filters(params: Mapping[str, str]) -> _Filters:
    customer_ids = _parse_array("customer_ids", params.get("customer_ids"))
    if customer_ids is not None:
        normalised = set()
        for raw in customer_ids:
            try:
                normalised.add(str(uuid.UUID(raw)))
            except ValueError:
                raise BadRequest(f"customer_ids: {raw!r} is not a valid UUID") from None
        customer_ids = tuple(sorted(normalised))

    only_archived = params.get("only_archived", "false")
    if only_archived not in ("true", "false"):
        raise BadRequest("only_archived must be true or false")

    return _Filters(
        customer_ids=customer_ids,
        salesforce_account_ids=_parse_array(
            "salesforce_account_ids", params.get("salesforce_account_ids")
        ),
        ingest_alias=params.get("ingest_alias"),
        only_archived=only_archived == "true",
    )


def _created_key(customer: Mapping[str, Any]) -> tuple[datetime, str]:
    # Parsed rather than compared as text, so hand-made test data with other RFC 3339
    # spellings (no milliseconds, +00:00) still sorts correctly.
    return datetime.fromisoformat(customer["created_at"]), customer["id"]


class SandboxAPI:
    """The fake API: `handle` answers one request; `handle_control` drives the faults.

    `customers` is a list of wire-format dicts, a count for generated data, or None for
    the default generated list. The dicts are never modified.
    """

    def __init__(
        self,
        customers: int | Iterable[Mapping[str, Any]] | None = None,
        token: str = SANDBOX_TOKEN,
        faults: Faults | None = None,
    ) -> None:
        if not token:
            raise ValueError("the sandbox needs a non-empty token")
        if customers is None:
            rows: list[Mapping[str, Any]] = list(generate_customers())
        elif isinstance(customers, int):
            rows = list(generate_customers(customers))
        else:
            rows = list(customers)
        self.token = token
        self.faults = faults if faults is not None else Faults()

        self._customers: tuple[Mapping[str, Any], ...] = tuple(sorted(rows, key=_created_key))
        # Positions into _customers; since _customers is in result order, sorting
        # positions puts any subset in result order too.
        self._by_id: dict[str, int] = {}
        self._by_salesforce_id: dict[str, list[int]] = {}
        self._by_alias: dict[str, list[int]] = {}
        self._archived: list[bool] = []
        for position, customer in enumerate(self._customers):
            self._by_id[str(customer["id"]).lower()] = position
            salesforce_id = (customer.get("customer_config") or {}).get("salesforce_account_id")
            if salesforce_id is not None:
                self._by_salesforce_id.setdefault(salesforce_id, []).append(position)
            for alias in customer.get("ingest_aliases") or ():
                self._by_alias.setdefault(alias, []).append(position)
            self._archived.append(_is_archived(customer))
        self._active = tuple(p for p, archived in enumerate(self._archived) if not archived)
        self._archived_only = tuple(p for p, archived in enumerate(self._archived) if archived)
        # Each customer's JSON, encoded on first use and spliced into page bodies.
        self._encoded: list[bytes | None] = [None] * len(self._customers)

        self._lock = threading.Lock()
        self._selections: OrderedDict[_Filters, tuple[int, ...]] = OrderedDict()
        self._invoices: OrderedDict[str, tuple[Mapping[str, Any], ...]] = OrderedDict()
        self._request_count = 0
        self._fault_sequence = 0
        self._list_sequence = 0

    @property
    def customers(self) -> tuple[Mapping[str, Any], ...]:
        """All customers, in result order (read-only)."""
        return self._customers

    @property
    def request_count(self) -> int:
        """Requests answered by `handle` since creation or the last `reset`."""
        with self._lock:
            return self._request_count

    def reset(self) -> None:
        """Clear faults and counters (the data and its caches stay)."""
        with self._lock:
            self.faults = Faults()
            self._request_count = 0
            self._fault_sequence = 0
            self._list_sequence = 0

    # --- the API ---------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: str, headers: Mapping[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one API request. `query` is the raw query string, without the `?`."""
        faults = self.faults
        with self._lock:
            self._request_count += 1
        if faults.latency_s:
            time.sleep(faults.latency_s)

        if not self._authorised(headers):
            return error_response(401, "Unauthorized")

        if path.startswith("/v1/"):
            with self._lock:
                self._fault_sequence += 1
                sequence = self._fault_sequence
            if faults.rate_limit_every and sequence % faults.rate_limit_every == 0:
                return self._rate_limited(faults)
            if faults.fail_every and sequence % faults.fail_every == 0:
                return error_response(faults.fail_status, "Sandbox injected failure")

        customer_path = _CUSTOMER_PATH.fullmatch(path)
        invoices_path = _INVOICES_PATH.fullmatch(path)
        if path != "/v1/customers" and customer_path is None and invoices_path is None:
            return error_response(404, "Not found")
        if method.upper() != "GET":
            return error_response(405, "Method not allowed", {"allow": "GET"})
        if customer_path is not None:
            return self._get(customer_path.group(1))
        if invoices_path is not None:
            try:
                return self._list_invoices(invoices_path.group(1), query, faults)
            except BadRequest as error:
                return error_response(400, str(error))
        try:
            return self._list(query, faults)
        except BadRequest as error:
            return error_response(400, str(error))

    def _authorised(self, headers: Mapping[str, str]) -> bool:
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        scheme, _, token = value.strip().partition(" ")
        # compare_digest wants equal types; encoding also keeps non-ASCII input from raising.
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.token.encode()
        )

    @staticmethod
    def _rate_limited(faults: Faults) -> Response:
        # Retry-After only takes whole seconds; round up so a client honouring it never
        # comes back early, and never say 0, which some clients read as "no delay needed".
        seconds = max(1, math.ceil(faults.retry_after_s))
        headers = {
            "retry-after": str(seconds),
            "retry-after-ms": str(round(faults.retry_after_s * 1000)),
        }
        return error_response(429, "Too many requests (sandbox injected rate limit)", headers)

    def _position(self, raw_id: str) -> int | None:
        """Where the customer of a path's ID is, or None: a 404 either way."""
        try:
            return self._by_id.get(str(uuid.UUID(raw_id)))
        except ValueError:
            return None

    def _get(self, raw_id: str) -> Response:
        position = self._position(raw_id)
        if position is None:
            return error_response(404, "Customer not found")
        return 200, dict(JSON_HEADERS), b'{"data":' + self._encode(position) + b"}"

    def _list(self, query: str, faults: Faults) -> Response:
        params = parse_query(query, _KNOWN_PARAMS)
        filters = _parse_filters(params)
        limit = parse_limit(params.get("limit"))
        digest = filters.digest()
        cursor = params.get("next_page")
        offset = decode_cursor(cursor, digest) if cursor is not None else 0
        selection = self._select(filters)

        with self._lock:
            self._list_sequence += 1
            list_sequence = self._list_sequence
        if faults.empty_page_every and list_sequence % faults.empty_page_every == 0:
            # An empty page whose cursor resumes at the same offset: nothing is lost, but
            # a client that stops at the first empty page will miss the rest.
            empty = {"data": [], "next_page": encode_cursor(offset, digest)}
            return json_response(200, empty)

        end = offset + limit
        rows = b",".join([self._encode(p) for p in selection[offset:end]])
        next_page = encode_cursor(end, digest) if end < len(selection) else None
        body = b'{"data":[' + rows + b'],"next_page":' + json.dumps(next_page).encode() + b"}"
        return 200, dict(JSON_HEADERS), body

    def _list_invoices(self, raw_id: str, query: str, faults: Faults) -> Response:
        position = self._position(raw_id)
        if position is None:
            return error_response(404, "Customer not found")
        params = parse_query(query, INVOICE_PARAMS)
        limit = parse_limit(params.get("limit"))
        selection = select_invoices(self._invoices_of(position), params)
        # The cursor is bound to the customer and every other parameter but itself.
        digest = hashlib.sha256(
            json.dumps(
                [
                    str(self._customers[position]["id"]),
                    sorted((k, v) for k, v in params.items() if k != "next_page"),
                ]
            ).encode()
        ).hexdigest()[:12]
        cursor = params.get("next_page")
        offset = decode_cursor(cursor, digest) if cursor is not None else 0

        with self._lock:
            self._list_sequence += 1
            list_sequence = self._list_sequence
        if faults.empty_page_every and list_sequence % faults.empty_page_every == 0:
            return json_response(200, {"data": [], "next_page": encode_cursor(offset, digest)})

        end = offset + limit
        next_page = encode_cursor(end, digest) if end < len(selection) else None
        return json_response(200, {"data": list(selection[offset:end]), "next_page": next_page})

    def _invoices_of(self, position: int) -> tuple[Mapping[str, Any], ...]:
        """The customer's invoices, oldest date first (LRU-cached)."""
        customer_id = str(self._customers[position]["id"])
        with self._lock:
            cached = self._invoices.get(customer_id)
            if cached is not None:
                self._invoices.move_to_end(customer_id)
                return cached
        invoices = tuple(sorted(generate_invoices(self._customers[position]), key=invoice_date))
        with self._lock:
            self._invoices[customer_id] = invoices
            while len(self._invoices) > INVOICE_CACHE_SIZE:
                self._invoices.popitem(last=False)
        return invoices

    def _encode(self, position: int) -> bytes:
        encoded = self._encoded[position]
        if encoded is None:
            # A race here only encodes the same bytes twice; no lock needed.
            encoded = json.dumps(
                self._customers[position], separators=(",", ":"), ensure_ascii=False
            ).encode()
            self._encoded[position] = encoded
        return encoded

    def _select(self, filters: _Filters) -> tuple[int, ...]:
        """Positions of the customers matching `filters`, in result order (LRU-cached)."""
        with self._lock:
            cached = self._selections.get(filters)
            if cached is not None:
                self._selections.move_to_end(filters)
                return cached

        candidates: set[int] | None = None
        if filters.customer_ids is not None:
            candidates = {self._by_id[i] for i in filters.customer_ids if i in self._by_id}
        if filters.salesforce_account_ids is not None:
            # A plain, case-sensitive string match against the stored form, 15 or 18
            # characters: what Metronome most likely does (its docs are silent), so the
            # dashboard has to send both forms.
            matches = {
                p
                for sf in filters.salesforce_account_ids
                for p in self._by_salesforce_id.get(sf, ())
            }
            candidates = matches if candidates is None else candidates & matches
        if filters.ingest_alias is not None:
            matches = set(self._by_alias.get(filters.ingest_alias, ()))
            candidates = matches if candidates is None else candidates & matches

        if candidates is None:
            selection = self._archived_only if filters.only_archived else self._active
        else:
            selection = tuple(
                sorted(p for p in candidates if self._archived[p] == filters.only_archived)
            )

        with self._lock:
            self._selections[filters] = selection
            self._selections.move_to_end(filters)
            while len(self._selections) > FILTER_CACHE_SIZE:
                self._selections.popitem(last=False)
        return selection

    # --- the control endpoint (standalone server only) -----------------------------------------

    def handle_control(self, method: str, path: str, body: bytes = b"") -> Response:
        """Inspect or change faults at runtime: `/_sandbox/faults`, `/reset`, `/stats`.

        Unauthenticated by design, so the standalone server exposes it only to whoever can
        reach its port; the in-process transport does not route here at all.
        """
        method = method.upper()
        if path == "/_sandbox/faults":
            if method == "GET":
                return json_response(200, self.faults.to_dict())
            if method == "POST":
                try:
                    data = json.loads(body or b"{}")
                except ValueError:
                    return error_response(400, "body must be a JSON object")
                if not isinstance(data, dict):
                    return error_response(400, "body must be a JSON object")
                try:
                    self.faults = Faults.from_dict(data)
                except (TypeError, ValueError) as error:
                    return error_response(400, str(error))
                return json_response(200, self.faults.to_dict())
            return error_response(405, "Method not allowed", {"allow": "GET, POST"})
        if path == "/_sandbox/reset":
            if method != "POST":
                return error_response(405, "Method not allowed", {"allow": "POST"})
            self.reset()
            return json_response(200, self.faults.to_dict())
        if path == "/_sandbox/stats":
            if method != "GET":
                return error_response(405, "Method not allowed", {"allow": "GET"})
            stats = {"request_count": self.request_count, "customers": len(self._customers)}
            return json_response(200, stats)
        return error_response(404, "Not found")


class SandboxTransport(httpx.BaseTransport):
    """An httpx transport answering from a SandboxAPI in-process, with no socket."""

    def __init__(self, api: SandboxAPI | None = None) -> None:
        self.api = api if api is not None else SandboxAPI()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        status, headers, body = self.api.handle(
            request.method,
            request.url.path,
            request.url.query.decode("ascii"),
            request.headers,
        )
        return httpx.Response(status, headers=headers, content=body, request=request)
