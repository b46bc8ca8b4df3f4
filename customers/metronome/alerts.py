"""A customer's alerts and whether the customer is in alarm: `POST /v1/customer-alerts/list`.

Reference: the official SDK's `CustomerAlert` (metronome-sdk 4.12,
`client.v1.customers.alerts.list`), a page whose `next_page` goes in the query string.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from customers.metronome.http import HTTPClient
from customers.metronome.lists import (
    Bounded,
    amount,
    collect,
    optional_text,
    page_of,
)
from customers.metronome.models import CreditType
from customers.metronome.wire import read_text

MAX_ALERTS = 100
MAX_PAGES = 5
# Metronome's page size here is undocumented; a page larger than this is not one.
MAX_PAGE_ITEMS = 500
CUSTOMER_STATUSES = frozenset({"ok", "in_alarm", "evaluating"})


@dataclass(frozen=True, slots=True)
class Alert:
    id: str
    name: str
    type: str  # e.g. low_remaining_commit_balance_reached
    status: str  # enabled, disabled, archived
    threshold: float
    credit_type: CreditType | None  # None: the threshold is a count (days, percent, units)
    customer_status: str | None  # ok, in_alarm, evaluating; None when not evaluated

    @property
    def in_alarm(self) -> bool:
        return self.customer_status == "in_alarm"

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Alert:
        alert = data["alert"]
        if not isinstance(alert, dict):
            raise TypeError("alert must be an object")
        customer_status = optional_text(data.get("customer_status"))
        if customer_status is not None and customer_status not in CUSTOMER_STATUSES:
            raise ValueError(f"unknown customer status {customer_status!r}")
        credit_type = alert.get("credit_type")
        return cls(
            id=read_text(alert["id"]),
            name=read_text(alert["name"]),
            type=read_text(alert["type"]),
            status=read_text(alert["status"]).lower(),
            threshold=amount(alert["threshold"]),
            credit_type=None if credit_type is None else CreditType.from_wire(credit_type),
            customer_status=customer_status,
        )


class AlertsClient(HTTPClient):
    def list_alerts(self, customer_id: str) -> Bounded[Alert]:
        """The customer's enabled and disabled alerts, and whether it is in alarm."""
        body = {"customer_id": customer_id, "alert_statuses": ["ENABLED", "DISABLED"]}

        def fetch(cursor: str | None) -> tuple[list[Any], str | None]:
            params = {"next_page": cursor} if cursor else {}
            answer = self.post_for_customer(customer_id, "/v1/customer-alerts/list", body, params)
            return page_of(answer, "next_page", "alerts")

        return collect(
            fetch,
            Alert.from_wire,
            what="alerts",
            max_items=MAX_ALERTS,
            max_pages=MAX_PAGES,
            max_page_items=MAX_PAGE_ITEMS,
        )
