"""A customer's contracts: `POST /v2/contracts/list`.

Reference: the official SDK's `ContractV2` and `client.v2.contracts.list` (metronome-sdk
4.12), whose page carries its cursor as `cursor` (not `next_page`), sent back in the body.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from customers.metronome.http import HTTPClient
from customers.metronome.lists import (
    Bounded,
    collect,
    credit_type_or_usd,
    optional_amount,
    optional_text,
    page_of,
)
from customers.metronome.models import CreditType
from customers.metronome.wire import read_datetime, read_optional_datetime, read_text

# Metronome's page size for contracts is 1..20.
PAGE_SIZE = 20
MAX_CONTRACTS = 50
MAX_PAGES = 5
# Payment terms beyond ten years are a broken number, not terms.
MAX_TERMS_DAYS = 3650


class Phase(StrEnum):
    CURRENT = "current"
    FUTURE = "future"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Contract:
    """`total_contract_value` is in `credit_type`'s units: the credit type of the contract's
    first commit, else US dollar cents (Metronome's default)."""

    id: str
    name: str
    starting_at: datetime
    ending_before: datetime | None
    net_payment_terms_days: int | None
    total_contract_value: float | None
    credit_type: CreditType
    archived: bool

    def phase(self, now: datetime) -> Phase:
        if self.starting_at > now:
            return Phase.FUTURE
        if self.ending_before is not None and self.ending_before <= now:
            return Phase.ENDED
        return Phase.CURRENT

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Contract:
        terms = optional_amount(data.get("net_payment_terms_days"))
        if terms is not None and not (0 <= terms <= MAX_TERMS_DAYS and terms == int(terms)):
            raise ValueError("net_payment_terms_days out of range")
        return cls(
            id=read_text(data["id"]),
            name=optional_text(data.get("name")) or "",
            starting_at=read_datetime(data["starting_at"]),
            ending_before=read_optional_datetime(data.get("ending_before")),
            net_payment_terms_days=None if terms is None else int(terms),
            total_contract_value=optional_amount(data.get("total_contract_value")),
            credit_type=_credit_type(data.get("commits")),
            archived=data.get("archived_at") is not None,
        )


def _credit_type(commits: object) -> CreditType:
    if isinstance(commits, list) and commits and isinstance(commits[0], dict):
        schedule = commits[0].get("access_schedule")
        if isinstance(schedule, dict) and schedule.get("credit_type") is not None:
            return credit_type_or_usd(schedule["credit_type"])
    return credit_type_or_usd(None)


class ContractsClient(HTTPClient):
    def list_contracts(self, customer_id: str) -> Bounded[Contract]:
        """The customer's contracts, as Metronome orders them (oldest start first)."""

        def fetch(cursor: str | None) -> tuple[list[Any], str | None]:
            body: dict[str, object] = {"customer_id": customer_id, "limit": PAGE_SIZE}
            if cursor:
                body["cursor"] = cursor
            answer = self.post_for_customer(customer_id, "/v2/contracts/list", body)
            # The SDK reads `cursor`; the team's API notes say `next_page`: either is followed.
            return page_of(answer, "cursor", "contracts", or_field="next_page")

        return collect(
            fetch,
            Contract.from_wire,
            what="contracts",
            max_items=MAX_CONTRACTS,
            max_pages=MAX_PAGES,
            max_page_items=PAGE_SIZE,
        )
