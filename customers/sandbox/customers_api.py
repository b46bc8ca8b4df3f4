"""The filters of `GET /v1/customers`, read from the query string as Metronome reads them
(see `api.py` for the choices where its documentation is silent)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .wire import BadRequest

# The spec's maxItems for both array filters.
MAX_ARRAY_ITEMS = 100
KNOWN_PARAMS = frozenset(
    {
        "customer_ids",
        "salesforce_account_ids",
        "ingest_alias",
        "only_archived",
        "limit",
        "next_page",
    }
)


@dataclasses.dataclass(frozen=True)
class Filters:
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


def is_archived(customer: Mapping[str, Any]) -> bool:
    return customer.get("archived_at") is not None


def _parse_array(name: str, value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = [item.strip() for item in value.split(",") if item.strip()]
    if len(items) > MAX_ARRAY_ITEMS:
        raise BadRequest(f"{name} accepts at most {MAX_ARRAY_ITEMS} values, got {len(items)}")
    return tuple(sorted(set(items))) or None


def parse_filters(params: Mapping[str, str]) -> Filters:
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

    return Filters(
        customer_ids=customer_ids,
        salesforce_account_ids=_parse_array(
            "salesforce_account_ids", params.get("salesforce_account_ids")
        ),
        ingest_alias=params.get("ingest_alias"),
        only_archived=only_archived == "true",
    )


def created_key(customer: Mapping[str, Any]) -> tuple[datetime, str]:
    # Parsed rather than compared as text, so hand-made test data with other RFC 3339
    # spellings (no milliseconds, +00:00) still sorts correctly.
    return datetime.fromisoformat(customer["created_at"]), customer["id"]
