"""The sandbox's read endpoints beside invoices: contracts, commits and credits with their
balances, customer alerts and usage. All are POSTs with a JSON body, as Metronome has them.

Where Metronome's documentation is silent, the sandbox makes these choices:
- a body that is not a JSON object, a required field missing, or a field of the wrong type
  or out of range is a 400 naming the field; unknown fields are ignored;
- a `customer_id` that is no customer of the account is a 404 (`Customer not found`);
- `POST /v2/contracts/list` pages by `cursor` in the body and answers `cursor` (the SDK's
  `BodyCursorPageCursorField`): `limit` 1..20, default 20; contracts oldest start first;
  `covering_date` and `starting_at` together are a 400, as the SDK's docstring says;
  without `include_balance` the contracts' commits and credits carry no `balance`;
- `POST /v1/contracts/customerBalances/list` pages by `next_page` in the body: `limit`
  1..100, default 25; commits and credits in the order of their contracts, then creation;
  without `include_balance` there is no `balance`;
- `POST /v1/customer-alerts/list` and `POST /v1/usage` page by `next_page` in the query
  string (the SDK's `CursorPageWithoutLimit`): 25 alerts, 100 usage rows to a page;
  `alert_statuses` defaults to ENABLED and DISABLED;
- usage: `starting_on` and `ending_before` must be UTC midnights, at most 366 days apart
  (a range of more than 10,000 windows is a 400); without `customer_ids` every customer's
  usage is listed, customer after customer.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from . import usage
from .accounts import Account
from .wire import BadRequest, Response, decode_cursor, encode_cursor, json_response

CONTRACTS_PAGE = 20
BALANCES_DEFAULT_PAGE = 25
ALERTS_PAGE = 25
USAGE_PAGE = 100
MAX_USAGE_WINDOWS = 10_000
MAX_USAGE_CUSTOMERS = 100
# A usage cursor's offset is customer position x this + row within the customer.
_ROWS_PER_CUSTOMER = 1_000_000
_WINDOWS = {"DAY": timedelta(days=1), "HOUR": timedelta(hours=1)}
_ALERT_STATUSES = {"ENABLED": "enabled", "DISABLED": "disabled", "ARCHIVED": "archived"}

Body = dict[str, Any]


# --- Reading a body -----------------------------------------------------------------------


def parse_body(raw: bytes) -> Body:
    try:
        data = json.loads(raw or b"null")
    except (ValueError, RecursionError):
        raise BadRequest("the body must be JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


def customer_id_of(data: Body) -> str:
    value = data.get("customer_id")
    if value is None:
        raise BadRequest("customer_id is required")
    return _uuid(value, "customer_id")


def _uuid(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise BadRequest(f"{name}: {value!r} is not a valid UUID") from None


def _bool(data: Body, name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false")
    return value


def _integer(data: Body, name: str, low: int, high: int, default: int) -> int:
    value = data.get(name, default)
    # The SDK types `limit` as a float: 20.0 is 20, 20.5 is no page size.
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise BadRequest(f"{name} must be an integer")
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}")
    return int(value)


def _timestamp(data: Body, name: str, *, required: bool = False) -> datetime | None:
    value = data.get(name)
    if value is None:
        if required:
            raise BadRequest(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be an RFC 3339 timestamp")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name} must be an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise BadRequest(f"{name} must be an RFC 3339 timestamp with a time zone")
    return parsed


def _cursor(value: object, name: str, digest: str) -> int:
    if value is None:
        return 0
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    return decode_cursor(value, digest)


def _digest(*parts: object) -> str:
    """Binds a cursor to the request it continues."""
    raw = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def _without(data: Body, *names: str) -> Body:
    return {key: value for key, value in data.items() if key not in names}


def _page(
    items: Sequence[Any], offset: int, size: int, digest: str
) -> tuple[list[Any], str | None]:
    end = offset + size
    return list(items[offset:end]), encode_cursor(end, digest) if end < len(items) else None


# --- The endpoints -----------------------------------------------------------------------


def _without_balance(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if key != "balance"}


def _is_archived(item: Mapping[str, Any]) -> bool:
    return item.get("archived_at") is not None


def list_contracts(data: Body, account: Account) -> Response:
    limit = _integer(data, "limit", 1, CONTRACTS_PAGE, CONTRACTS_PAGE)
    covering = _timestamp(data, "covering_date")
    starting = _timestamp(data, "starting_at")
    if covering is not None and starting is not None:
        raise BadRequest("covering_date cannot be given together with starting_at")
    include_archived = _bool(data, "include_archived")
    include_balance = _bool(data, "include_balance")
    _bool(data, "include_ledgers")
    offset = _cursor(data.get("cursor"), "cursor", _digest("contracts", _without(data, "cursor")))

    selected = []
    for contract in account.contracts:
        start = _parse(contract["starting_at"])
        end = _parse(contract["ending_before"]) if contract.get("ending_before") else None
        if _is_archived(contract) and not include_archived:
            continue
        if covering is not None and not (start <= covering and (end is None or covering < end)):
            continue
        if starting is not None and start < starting:
            continue
        if not include_balance:
            contract = {
                **contract,
                "commits": [_without_balance(c) for c in contract["commits"]],
                "credits": [_without_balance(c) for c in contract["credits"]],
            }
        selected.append(contract)
    page, next_cursor = _page(
        selected, offset, limit, _digest("contracts", _without(data, "cursor"))
    )
    return json_response(200, {"data": page, "cursor": next_cursor})


def list_balances(data: Body, account: Account) -> Response:
    limit = _integer(data, "limit", 1, 100, BALANCES_DEFAULT_PAGE)
    include_balance = _bool(data, "include_balance")
    exclude_zero = _bool(data, "exclude_zero_balances")
    include_archived = _bool(data, "include_archived")
    for name in ("include_ledgers", "include_contract_balances"):
        _bool(data, name)
    covering = _timestamp(data, "covering_date")
    _timestamp(data, "starting_at")
    _timestamp(data, "effective_before")
    only_id = _uuid(data["id"], "id") if data.get("id") is not None else None
    access_type = data.get("access_type")
    if access_type is not None and access_type not in ("SPEND", "QUANTITY"):
        raise BadRequest("access_type must be SPEND or QUANTITY")
    digest = _digest("balances", _without(data, "next_page"))
    offset = _cursor(data.get("next_page"), "next_page", digest)

    selected = []
    for item in account.balances:
        if only_id is not None and item["id"] != only_id:
            continue
        if _is_archived(item) and not include_archived:
            continue
        if exclude_zero and not item.get("balance"):
            continue
        if covering is not None:
            schedule = item["access_schedule"]["schedule_items"]
            if not any(
                _parse(s["starting_at"]) <= covering < _parse(s["ending_before"]) for s in schedule
            ):
                continue
        selected.append(item if include_balance else _without_balance(item))
    page, next_page = _page(selected, offset, limit, digest)
    return json_response(200, {"data": page, "next_page": next_page})


def list_alerts(data: Body, query_cursor: str | None, account: Account) -> Response:
    statuses = data.get("alert_statuses", ["ENABLED", "DISABLED"])
    if not isinstance(statuses, list) or not statuses:
        raise BadRequest("alert_statuses must be a non-empty list")
    wanted = set()
    for status in statuses:
        if status not in _ALERT_STATUSES:
            raise BadRequest(
                f"alert_statuses: {status!r} must be one of ENABLED, DISABLED, ARCHIVED"
            )
        wanted.add(_ALERT_STATUSES[status])
    digest = _digest("alerts", data)
    offset = _cursor(query_cursor, "next_page", digest)
    selected = [a for a in account.alerts if a["alert"]["status"] in wanted]
    page, next_page = _page(selected, offset, ALERTS_PAGE, digest)
    return json_response(200, {"data": page, "next_page": next_page})


class UsageSource:
    """What usage needs of the API: customers in order, and each one's metrics."""

    def __init__(
        self,
        customers: Sequence[Mapping[str, Any]],
        position_of: Callable[[str], int | None],
        metrics_of: Callable[[int], tuple[usage.Metric, ...]],
    ) -> None:
        self.customers = customers
        self.position_of = position_of
        self.metrics_of = metrics_of


def list_usage(data: Body, query_cursor: str | None, source: UsageSource) -> Response:
    start = _timestamp(data, "starting_on", required=True)
    end = _timestamp(data, "ending_before", required=True)
    assert start is not None and end is not None  # required above
    for name, moment in (("starting_on", start), ("ending_before", end)):
        utc = moment.astimezone(UTC)
        if (utc.hour, utc.minute, utc.second, utc.microsecond) != (0, 0, 0, 0):
            raise BadRequest(f"{name} must be aligned to UTC midnight")
    if end < start + timedelta(days=1):
        raise BadRequest("ending_before must be at least one day after starting_on")
    window_size = data.get("window_size")
    if window_size not in ("HOUR", "DAY", "NONE"):
        raise BadRequest("window_size must be HOUR, DAY or NONE")
    windows = _windows(start.astimezone(UTC), end.astimezone(UTC), window_size)
    positions = _usage_customers(data.get("customer_ids"), source)
    metric_ids = _metric_filter(data.get("billable_metrics"))
    digest = _digest("usage", data)
    offset = _cursor(query_cursor, "next_page", digest)

    rows = list(_usage_rows(source, positions, windows, metric_ids, offset))
    next_page = None
    if len(rows) > USAGE_PAGE:
        next_page = encode_cursor(rows[USAGE_PAGE][0], digest)
    return json_response(
        200, {"data": [row for _, row in rows[:USAGE_PAGE]], "next_page": next_page}
    )


def _windows(start: datetime, end: datetime, size: str) -> list[tuple[datetime, datetime]]:
    if size == "NONE":
        return [(start, end)]
    step = _WINDOWS[size]
    if (end - start) / step > MAX_USAGE_WINDOWS:
        raise BadRequest(f"the range holds more than {MAX_USAGE_WINDOWS:,} windows")
    windows = []
    moment = start
    while moment < end:
        windows.append((moment, moment + step))
        moment += step
    return windows


def _usage_customers(value: object, source: UsageSource) -> list[int]:
    if value is None:
        return list(range(len(source.customers)))
    if not isinstance(value, list):
        raise BadRequest("customer_ids must be a list")
    if len(value) > MAX_USAGE_CUSTOMERS:
        raise BadRequest(f"customer_ids accepts at most {MAX_USAGE_CUSTOMERS} values")
    positions = {source.position_of(_uuid(item, "customer_ids")) for item in value}
    return sorted(p for p in positions if p is not None)


def _metric_filter(value: object) -> set[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise BadRequest("billable_metrics must be a list")
    ids = set()
    for item in value:
        if not isinstance(item, dict) or "id" not in item:
            raise BadRequest("each of billable_metrics must be an object with an id")
        ids.add(_uuid(item["id"], "billable_metrics.id"))
    return ids


def _usage_rows(
    source: UsageSource,
    positions: list[int],
    windows: list[tuple[datetime, datetime]],
    metric_ids: set[str] | None,
    offset: int,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(cursor offset, row) from `offset` on, one more than a page so the next is known."""
    produced = 0
    first_position, first_row = divmod(offset, _ROWS_PER_CUSTOMER)
    for position in positions:
        if position < first_position:
            continue
        customer = source.customers[position]
        metrics = [
            m for m in source.metrics_of(position) if metric_ids is None or m.id in metric_ids
        ]
        active_from = _parse(customer["created_at"])
        archived_at = customer.get("archived_at")
        active_until = _parse(archived_at) if archived_at else None
        index = 0
        for metric in metrics:
            for window_start, window_end in windows:
                if position == first_position and index < first_row:
                    index += 1
                    continue
                row = {
                    "customer_id": customer["id"],
                    "billable_metric_id": metric.id,
                    "billable_metric_name": metric.name,
                    "start_timestamp": _format(window_start),
                    "end_timestamp": _format(window_end),
                    "value": usage.value(
                        customer["id"], metric, window_start, window_end, active_from, active_until
                    ),
                }
                yield position * _ROWS_PER_CUSTOMER + index, row
                index += 1
                produced += 1
                if produced > USAGE_PAGE:
                    return


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _format(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
