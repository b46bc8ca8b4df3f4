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

`GET /v1/customers/{id}/invoices` (invoices from `invoices.py`) makes these choices:
- `limit` defaults to 50 and `sort` to `date_asc` (the SDK's docstring says so);
- an invoice's date is its `issued_at`, or for an unissued one (a draft) the end of its
  billing period; ties are broken by ID;
- `starting_on` keeps invoices whose period starts at or after it, `ending_before` those
  whose period ends at or before it (a period's end is exclusive, so a November invoice
  ends at 1 December and `ending_before=<1 December>` keeps it);
- `status`, `type` and `credit_type_id` must be values Metronome knows, or it is a 400;
- the faults apply as to the list, empty pages (counted together with the list's) included.
"""

from __future__ import annotations

import base64
import binascii
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
from urllib.parse import parse_qsl

import httpx

from .data import generate_customers
from .invoices import CREDIT_TYPES, generate_invoices

# Public on purpose: the sandbox only ever holds fake data.
SANDBOX_TOKEN = "sandbox-token"  # noqa: S105

# Metronome documents no default page size; 50 is a middle ground for clients that forget.
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
# The spec's maxItems for both array filters.
MAX_ARRAY_ITEMS = 100
# Distinct filter combinations whose result lists stay cached: enough for a few concurrent
# exports plus the dashboard's searches, small enough to bound memory at 100k customers.
FILTER_CACHE_SIZE = 32

Response = tuple[int, dict[str, str], bytes]

_JSON_HEADERS = {"content-type": "application/json"}
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
_INVOICE_PARAMS = frozenset(
    {
        "limit",
        "next_page",
        "status",
        "type",
        "sort",
        "starting_on",
        "ending_before",
        "credit_type_id",
        "skip_zero_qty_line_items",
    }
)
_INVOICE_STATUSES = frozenset({"DRAFT", "FINALIZED", "VOID"})
_INVOICE_TYPES = frozenset({"USAGE", "USAGE_CONSOLIDATED", "SCHEDULED"})
# Customers whose generated invoices stay cached: what a few people browsing need.
INVOICE_CACHE_SIZE = 256
_INTEGER = re.compile(r"-?[0-9]+")
_CURSOR = re.compile(r"[A-Za-z0-9_-]+")
_CUSTOMER_PATH = re.compile(r"/v1/customers/([^/]+)")
_INVOICES_PATH = re.compile(r"/v1/customers/([^/]+)/invoices")


@dataclasses.dataclass
class Faults:
    """Failures the sandbox injects, read afresh on every request so they can change live.

    Counting is per API instance over authenticated requests on /v1/ paths; 0 turns a
    fault off. Replacing the whole object (`api.faults = Faults(...)`) is atomic; mutating
    fields one by one is fine for tests and demos, which is all this is for.
    """

    latency_s: float = 0.0
    fail_every: int = 0
    fail_status: int = 503
    rate_limit_every: int = 0
    retry_after_s: float = 1.0
    empty_page_every: int = 0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            # bool is an int subclass; True as "every 1st request" would be a silent surprise.
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{field.name} must be a number")
            if field.type == "int" and not isinstance(value, int):
                raise ValueError(f"{field.name} must be an integer")
            if value < 0 or not math.isfinite(value):
                raise ValueError(f"{field.name} must be a finite number >= 0")
            if field.type == "float":
                # JSON and the CLI hand over whole numbers as int; keep to_dict stable.
                setattr(self, field.name, float(value))
        if not 400 <= self.fail_status <= 599:
            raise ValueError("fail_status must be an HTTP error status (400-599)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Faults:
        """Build from JSON-like data; raises ValueError on unknown keys or bad values."""
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(unknown)}")
        return cls(**data)


class _BadRequest(Exception):
    pass


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


def _json(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return status, {**_JSON_HEADERS, **(headers or {})}, body


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return _json(status, {"message": message}, headers)


def _is_archived(customer: Mapping[str, Any]) -> bool:
    return customer.get("archived_at") is not None


def _encode_cursor(offset: int, filters_digest: str) -> str:
    raw = json.dumps({"o": offset, "f": filters_digest}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode_cursor(cursor: str, filters_digest: str) -> int:
    if not _CURSOR.fullmatch(cursor):
        raise _BadRequest("next_page is not a valid cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError):
        raise _BadRequest("next_page is not a valid cursor") from None
    if not isinstance(payload, dict):
        raise _BadRequest("next_page is not a valid cursor")
    offset, digest = payload.get("o"), payload.get("f")
    if type(offset) is not int or offset < 0 or not isinstance(digest, str):
        raise _BadRequest("next_page is not a valid cursor")
    if not hmac.compare_digest(digest, filters_digest):
        raise _BadRequest("next_page was issued for different filters; send the same filters")
    return offset


def _parse_array(name: str, value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = [item.strip() for item in value.split(",") if item.strip()]
    if len(items) > MAX_ARRAY_ITEMS:
        raise _BadRequest(f"{name} accepts at most {MAX_ARRAY_ITEMS} values, got {len(items)}")
    return tuple(sorted(set(items))) or None


def _parse_filters(params: Mapping[str, str]) -> _Filters:
    customer_ids = _parse_array("customer_ids", params.get("customer_ids"))
    if customer_ids is not None:
        normalised = set()
        for raw in customer_ids:
            try:
                normalised.add(str(uuid.UUID(raw)))
            except ValueError:
                raise _BadRequest(f"customer_ids: {raw!r} is not a valid UUID") from None
        customer_ids = tuple(sorted(normalised))

    only_archived = params.get("only_archived", "false")
    if only_archived not in ("true", "false"):
        raise _BadRequest("only_archived must be true or false")

    return _Filters(
        customer_ids=customer_ids,
        salesforce_account_ids=_parse_array(
            "salesforce_account_ids", params.get("salesforce_account_ids")
        ),
        ingest_alias=params.get("ingest_alias"),
        only_archived=only_archived == "true",
    )


def _parse_limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not _INTEGER.fullmatch(value):
        raise _BadRequest("limit must be an integer")
    limit = int(value)
    if not 1 <= limit <= MAX_LIMIT:
        raise _BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def _parse_query(query: str, known: frozenset[str] = _KNOWN_PARAMS) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in known or value == "":
            continue
        if key in params:
            raise _BadRequest(f"{key} was sent more than once; send one comma-separated value")
        params[key] = value
    return params


def _created_key(customer: Mapping[str, Any]) -> tuple[datetime, str]:
    # Parsed rather than compared as text, so hand-made test data with other RFC 3339
    # spellings (no milliseconds, +00:00) still sorts correctly.
    return datetime.fromisoformat(customer["created_at"]), customer["id"]


def _invoice_date(invoice: Mapping[str, Any]) -> tuple[datetime, str]:
    date = invoice.get("issued_at") or invoice["end_timestamp"]
    return datetime.fromisoformat(date), invoice["id"]


def _parse_timestamp(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _BadRequest(f"{name} must be an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise _BadRequest(f"{name} must be an RFC 3339 timestamp with a time zone")
    return parsed


def _select_invoices(
    invoices: tuple[Mapping[str, Any], ...], params: Mapping[str, str]
) -> list[Mapping[str, Any]]:
    """Filter, order and trim invoices as the query asks; 400 on values Metronome rejects."""
    status = params.get("status")
    if status is not None and status not in _INVOICE_STATUSES:
        raise _BadRequest(f"status must be one of {', '.join(sorted(_INVOICE_STATUSES))}")
    invoice_type = params.get("type")
    if invoice_type is not None and invoice_type not in _INVOICE_TYPES:
        raise _BadRequest(f"type must be one of {', '.join(sorted(_INVOICE_TYPES))}")
    sort = params.get("sort", "date_asc")
    if sort not in ("date_asc", "date_desc"):
        raise _BadRequest("sort must be date_asc or date_desc")
    credit_type_id = params.get("credit_type_id")
    if credit_type_id is not None and credit_type_id not in {c["id"] for c in CREDIT_TYPES}:
        raise _BadRequest("credit_type_id is not a credit type of this account")
    skip_zero = params.get("skip_zero_qty_line_items", "false")
    if skip_zero not in ("true", "false"):
        raise _BadRequest("skip_zero_qty_line_items must be true or false")
    starting_on = _parse_timestamp("starting_on", params.get("starting_on"))
    ending_before = _parse_timestamp("ending_before", params.get("ending_before"))

    selected = []
    for invoice in invoices:
        if status is not None and invoice["status"] != status:
            continue
        if invoice_type is not None and invoice["type"] != invoice_type:
            continue
        if credit_type_id is not None and invoice["credit_type"]["id"] != credit_type_id:
            continue
        start = datetime.fromisoformat(invoice["start_timestamp"])
        end = datetime.fromisoformat(invoice["end_timestamp"])
        if starting_on is not None and start < starting_on:
            continue
        if ending_before is not None and end > ending_before:
            continue
        if skip_zero == "true":
            items = [i for i in invoice["line_items"] if i.get("quantity", 1) != 0]
            invoice = {**invoice, "line_items": items}
        selected.append(invoice)
    if sort == "date_desc":
        selected.reverse()
    return selected


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
            return _error(401, "Unauthorized")

        if path.startswith("/v1/"):
            with self._lock:
                self._fault_sequence += 1
                sequence = self._fault_sequence
            if faults.rate_limit_every and sequence % faults.rate_limit_every == 0:
                return self._rate_limited(faults)
            if faults.fail_every and sequence % faults.fail_every == 0:
                return _error(faults.fail_status, "Sandbox injected failure")

        customer_path = _CUSTOMER_PATH.fullmatch(path)
        invoices_path = _INVOICES_PATH.fullmatch(path)
        if path != "/v1/customers" and customer_path is None and invoices_path is None:
            return _error(404, "Not found")
        if method.upper() != "GET":
            return _error(405, "Method not allowed", {"allow": "GET"})
        if customer_path is not None:
            return self._get(customer_path.group(1))
        if invoices_path is not None:
            try:
                return self._list_invoices(invoices_path.group(1), query, faults)
            except _BadRequest as error:
                return _error(400, str(error))
        try:
            return self._list(query, faults)
        except _BadRequest as error:
            return _error(400, str(error))

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
        return _error(429, "Too many requests (sandbox injected rate limit)", headers)

    def _position(self, raw_id: str) -> int | None:
        """Where the customer of a path's ID is, or None: a 404 either way."""
        try:
            return self._by_id.get(str(uuid.UUID(raw_id)))
        except ValueError:
            return None

    def _get(self, raw_id: str) -> Response:
        position = self._position(raw_id)
        if position is None:
            return _error(404, "Customer not found")
        return 200, dict(_JSON_HEADERS), b'{"data":' + self._encode(position) + b"}"

    def _list(self, query: str, faults: Faults) -> Response:
        params = _parse_query(query)
        filters = _parse_filters(params)
        limit = _parse_limit(params.get("limit"))
        digest = filters.digest()
        cursor = params.get("next_page")
        offset = _decode_cursor(cursor, digest) if cursor is not None else 0
        selection = self._select(filters)

        with self._lock:
            self._list_sequence += 1
            list_sequence = self._list_sequence
        if faults.empty_page_every and list_sequence % faults.empty_page_every == 0:
            # An empty page whose cursor resumes at the same offset: nothing is lost, but
            # a client that stops at the first empty page will miss the rest.
            empty = {"data": [], "next_page": _encode_cursor(offset, digest)}
            return _json(200, empty)

        end = offset + limit
        rows = b",".join([self._encode(p) for p in selection[offset:end]])
        next_page = _encode_cursor(end, digest) if end < len(selection) else None
        body = b'{"data":[' + rows + b'],"next_page":' + json.dumps(next_page).encode() + b"}"
        return 200, dict(_JSON_HEADERS), body

    def _list_invoices(self, raw_id: str, query: str, faults: Faults) -> Response:
        position = self._position(raw_id)
        if position is None:
            return _error(404, "Customer not found")
        params = _parse_query(query, _INVOICE_PARAMS)
        limit = _parse_limit(params.get("limit"))
        selection = _select_invoices(self._invoices_of(position), params)
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
        offset = _decode_cursor(cursor, digest) if cursor is not None else 0

        with self._lock:
            self._list_sequence += 1
            list_sequence = self._list_sequence
        if faults.empty_page_every and list_sequence % faults.empty_page_every == 0:
            return _json(200, {"data": [], "next_page": _encode_cursor(offset, digest)})

        end = offset + limit
        next_page = _encode_cursor(end, digest) if end < len(selection) else None
        return _json(200, {"data": list(selection[offset:end]), "next_page": next_page})

    def _invoices_of(self, position: int) -> tuple[Mapping[str, Any], ...]:
        """The customer's invoices, oldest date first (LRU-cached)."""
        customer_id = str(self._customers[position]["id"])
        with self._lock:
            cached = self._invoices.get(customer_id)
            if cached is not None:
                self._invoices.move_to_end(customer_id)
                return cached
        invoices = tuple(sorted(generate_invoices(self._customers[position]), key=_invoice_date))
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
                return _json(200, self.faults.to_dict())
            if method == "POST":
                try:
                    data = json.loads(body or b"{}")
                except ValueError:
                    return _error(400, "body must be a JSON object")
                if not isinstance(data, dict):
                    return _error(400, "body must be a JSON object")
                try:
                    self.faults = Faults.from_dict(data)
                except (TypeError, ValueError) as error:
                    return _error(400, str(error))
                return _json(200, self.faults.to_dict())
            return _error(405, "Method not allowed", {"allow": "GET, POST"})
        if path == "/_sandbox/reset":
            if method != "POST":
                return _error(405, "Method not allowed", {"allow": "POST"})
            self.reset()
            return _json(200, self.faults.to_dict())
        if path == "/_sandbox/stats":
            if method != "GET":
                return _error(405, "Method not allowed", {"allow": "GET"})
            stats = {"request_count": self.request_count, "customers": len(self._customers)}
            return _json(200, stats)
        return _error(404, "Not found")


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
