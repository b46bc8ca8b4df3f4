"""A customer's commits and credits with what is left of them:
`POST /v1/contracts/customerBalances/list` with `include_balance: true`.

Reference: the official SDK's `Commit` and `Credit` (metronome-sdk 4.12,
`client.v1.contracts.list_balances`), a page whose `next_page` goes back in the body.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from customers.metronome.http import HTTPClient
from customers.metronome.lists import (
    Bounded,
    amount,
    collect,
    credit_type_or_usd,
    optional_amount,
    optional_text,
    page_of,
)
from customers.metronome.models import CreditType
from customers.metronome.wire import read_datetime, read_text

PAGE_SIZE = 25  # Metronome's documented default
MAX_BALANCES = 100
MAX_PAGES = 4
# A commit's access schedule is a few segments (one per year or month of a contract).
MAX_SCHEDULE_ITEMS = 500
KINDS = {"PREPAID": "Prepaid commit", "POSTPAID": "Postpaid commit", "CREDIT": "Credit"}
EXPIRY_WARNING = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Balance:
    """One commit or credit. Amounts are in `credit_type`'s units; `remaining` is None when
    Metronome did not say (it only does when asked with `include_balance`)."""

    id: str
    kind: str  # PREPAID, POSTPAID or CREDIT
    name: str
    product_name: str
    contract_id: str | None
    credit_type: CreditType
    granted: float
    remaining: float | None
    access_start: datetime | None
    access_end: datetime | None

    @property
    def kind_label(self) -> str:
        return KINDS[self.kind]

    @property
    def is_empty(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    @property
    def remaining_share(self) -> float:
        """What is left of what was granted, 0..1, for the bar."""
        if self.remaining is None or self.granted <= 0:
            return 0.0
        return max(0.0, min(1.0, self.remaining / self.granted))

    def expires_soon(self, now: datetime) -> bool:
        """Something left that can no longer be used within 30 days."""
        return (
            not self.is_empty
            and self.access_end is not None
            and now < self.access_end <= now + EXPIRY_WARNING
        )

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Balance:
        kind = read_text(data["type"])
        if kind not in KINDS:
            raise ValueError(f"unknown commit or credit type {kind!r}")
        schedule = data.get("access_schedule")
        if schedule is not None and not isinstance(schedule, dict):
            raise TypeError("access_schedule must be an object")
        items = (schedule or {}).get("schedule_items", [])
        if not isinstance(items, list) or len(items) > MAX_SCHEDULE_ITEMS:
            raise ValueError("schedule_items must be a short list")
        starts, ends, granted = [], [], 0.0
        for item in items:
            if not isinstance(item, dict):
                raise TypeError("a schedule item must be an object")
            granted += amount(item["amount"])
            starts.append(read_datetime(item["starting_at"]))
            ends.append(read_datetime(item["ending_before"]))
        if not items:
            granted = optional_amount(data.get("amount")) or 0.0  # the deprecated field
        product = data["product"]
        contract = data.get("contract")
        if not isinstance(product, dict) or (
            contract is not None and not isinstance(contract, dict)
        ):
            raise TypeError("product and contract must be objects")
        return cls(
            id=read_text(data["id"]),
            kind=kind,
            name=optional_text(data.get("name")) or "",
            product_name=optional_text(product.get("name")) or "",
            contract_id=optional_text(contract.get("id")) if contract else None,
            credit_type=credit_type_or_usd((schedule or {}).get("credit_type")),
            granted=amount(granted),
            remaining=optional_amount(data.get("balance")),
            access_start=min(starts) if starts else None,
            access_end=max(ends) if ends else None,
        )


class BalancesClient(HTTPClient):
    def list_balances(self, customer_id: str) -> Bounded[Balance]:
        """Every commit and credit of the customer with what is left of it."""

        def fetch(cursor: str | None) -> tuple[list[Any], str | None]:
            body: dict[str, object] = {
                "customer_id": customer_id,
                "include_balance": True,
                "limit": PAGE_SIZE,
            }
            if cursor:
                body["next_page"] = cursor
            answer = self.post_for_customer(
                customer_id, "/v1/contracts/customerBalances/list", body
            )
            return page_of(answer, "next_page", "commits and credits")

        return collect(
            fetch,
            Balance.from_wire,
            what="commits and credits",
            max_items=MAX_BALANCES,
            max_pages=MAX_PAGES,
            max_page_items=PAGE_SIZE,
        )
