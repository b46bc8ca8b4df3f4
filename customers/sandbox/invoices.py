"""Seeded, deterministic invoices for the sandbox's customers, in Metronome's wire format.

Reference: the `Invoice` model of Metronome's official SDKs
(metronome-sdk: `types/v1/customers/invoice.py`) and ../shared/metronome-api.md.

A customer's invoices depend only on the customer (its ID seeds the random draws), so any
process builds the same ones, lazily, with no change to how customers are generated:
- one USAGE invoice per calendar month since the customer signed, at most the last
  `MAX_MONTHS`; the month that was still running at the data set's end is a DRAFT;
- for about a third of the customers, a SCHEDULED invoice for an annual platform fee;
- totals in `USD (cents)`, or for about a tenth of the customers in a custom pricing unit;
- finalized invoices carry `issued_at` and, when the company bills through Stripe or
  NetSuite, an `external_invoice` whose payment status is PAID, PAYMENT_FAILED and so on;
- an archived customer is billed until the month it was archived, whose invoice is VOID
  (archiving voids open invoices);
- a customer signed in the data set's last month has no invoices yet.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

# Metronome's fixed ID for its built-in US dollar credit type.
USD_CENTS = {"id": "2714e483-4ff1-48e4-9e25-ac732e8f24f2", "name": "USD (cents)"}
# A custom pricing unit, as companies that sell prepaid credits define them.
COMPUTE_CREDITS = {"id": "6d2d1b0a-8a0e-4a47-9a4c-3c3f8f0f5b21", "name": "Compute credits"}
CREDIT_TYPES = (USD_CENTS, COMPUTE_CREDITS)

# The data set's "now", the same fixed end as the customer generator's (2026-11-20).
DATA_END = datetime(2026, 11, 20, tzinfo=UTC)
MAX_MONTHS = 36

# Name, price in cents per unit, and the range of a month's quantity as powers of ten.
_USAGE_PRODUCTS = (
    ("API requests (per 1,000)", 4.0, 3.0, 5.0),
    ("Storage (GB-month)", 2.3, 2.0, 5.0),
    ("Compute hours", 48.0, 1.0, 4.0),
    ("Data transfer (GB)", 9.0, 2.0, 4.0),
    ("Seats", 1500.0, 0.5, 2.3),
)
_PROVIDERS = ("stripe", "netsuite")
_PAID_STATUSES = ("PAID",) * 16 + ("PAYMENT_FAILED", "PARTIALLY_PAID", "UNCOLLECTIBLE")


def _month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(moment: datetime) -> datetime:
    return (moment.replace(day=1) + timedelta(days=32)).replace(day=1)


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _external_invoice(
    rng: random.Random, provider: str | None, issued: datetime, *, recent: bool
) -> dict[str, Any] | None:
    if provider is None:
        return None
    # The newest invoices are often still waiting for payment.
    status = "FINALIZED" if recent and rng.random() < 0.6 else _PAID_STATUSES[rng.randrange(19)]
    if provider == "stripe":
        invoice_id = "in_" + "".join(
            rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789", k=24)
        )
    else:
        invoice_id = f"INV-{rng.randrange(100_000, 999_999)}"
    external: dict[str, Any] = {
        "billing_provider_type": provider,
        "external_status": status,
        "invoice_id": invoice_id,
        "issued_at_timestamp": _timestamp(issued),
    }
    if status == "PAYMENT_FAILED":
        external["billing_provider_error"] = "Your card was declined."
    return external


def _line_item(
    name: str, total: float, item_type: str, credit_type: Mapping[str, str], **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "total": total,
        "type": item_type,
        "credit_type": dict(credit_type),
        **extra,
    }


def generate_invoices(customer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The invoices of one sandbox customer, oldest billing period first."""
    rng = random.Random(f"invoices:{customer['id']}")
    created = _parse(customer["created_at"])
    archived_at = customer.get("archived_at")
    archived = _parse(archived_at) if archived_at else None
    first_month = _month_start(created)
    current_month = _month_start(DATA_END)
    if first_month >= current_month:
        return []

    credit_type = COMPUTE_CREDITS if rng.random() < 0.1 else USD_CENTS
    # Units per cent: credits are sold by the thousand, so their totals are larger numbers.
    scale = 10 if credit_type is COMPUTE_CREDITS else 1
    provider = None if rng.random() < 0.25 else _PROVIDERS[rng.randrange(2)]
    on_contract = rng.random() < 0.7
    contract_id = _uuid(rng) if on_contract else None
    plan_name = None if on_contract else ("Growth", "Scale", "Legacy (2019)")[rng.randrange(3)]
    terms = (15, 30, 30, 45, 60)[rng.randrange(5)]
    products = rng.sample(_USAGE_PRODUCTS, rng.randrange(1, 4))
    base_quantities = [10 ** rng.uniform(low, high) for _, _, low, high in products]
    # An unbillable customer (or one on a free tier) still gets invoices, for zero.
    free = rng.random() < 0.08
    annual_fee = None if rng.random() < 0.66 else rng.choice((1_200_000, 3_600_000, 12_000_000))

    months: list[datetime] = []
    # Archiving stops billing: the month it happened in is the last, and it is voided.
    last_month = min(current_month, _month_start(archived)) if archived else current_month
    month = first_month
    while month <= last_month:
        months.append(month)
        month = _next_month(month)
    months = months[-MAX_MONTHS:]

    invoices: list[dict[str, Any]] = []
    signed = created.replace(hour=0, minute=0, second=0, microsecond=0)
    for index, month in enumerate(months):
        # The first period runs from the day the customer signed.
        start, end = max(month, signed), _next_month(month)
        growth = 1 + index * 0.03
        items = []
        for (name, price, _, _), quantity in zip(products, base_quantities, strict=True):
            used = 0 if free else round(quantity * growth * rng.uniform(0.6, 1.4))
            unit_price = price * scale
            items.append(
                _line_item(
                    name,
                    round(used * unit_price, 2),
                    "usage",
                    credit_type,
                    quantity=used,
                    unit_price=unit_price,
                    starting_at=_timestamp(start),
                    ending_before=_timestamp(end),
                )
            )
        if not free and rng.random() < 0.15:
            credit = -round(sum(item["total"] for item in items) * rng.uniform(0.05, 0.3), 2)
            items.append(_line_item("Promotional credit", credit, "credit", credit_type))
        invoice = _invoice(
            rng,
            customer["id"],
            "USAGE",
            items,
            credit_type,
            start,
            end,
            contract_id=contract_id,
            plan_name=plan_name,
            terms=terms,
        )
        invoice.update(
            _state(
                rng, start, end, current_month, archived, provider, recent=index >= len(months) - 2
            )
        )
        invoices.append(invoice)

        if annual_fee and month.month == first_month.month:
            fee = annual_fee * scale
            scheduled = _invoice(
                rng,
                customer["id"],
                "SCHEDULED",
                [
                    _line_item(
                        "Annual platform fee",
                        fee,
                        "scheduled",
                        credit_type,
                        quantity=1,
                        unit_price=fee,
                    )
                ],
                credit_type,
                start,
                start + timedelta(days=1),
                contract_id=contract_id,
                plan_name=plan_name,
                terms=terms,
            )
            scheduled.update(
                _state(
                    rng,
                    start,
                    start + timedelta(days=1),
                    current_month,
                    archived,
                    provider,
                    recent=False,
                )
            )
            invoices.append(scheduled)
    return invoices


def _invoice(
    rng: random.Random,
    customer_id: str,
    invoice_type: str,
    items: list[dict[str, Any]],
    credit_type: Mapping[str, str],
    start: datetime,
    end: datetime,
    *,
    contract_id: str | None,
    plan_name: str | None,
    terms: int,
) -> dict[str, Any]:
    invoice: dict[str, Any] = {
        "id": _uuid(rng),
        "customer_id": customer_id,
        "type": invoice_type,
        "credit_type": dict(credit_type),
        "line_items": items,
        "total": round(sum(item["total"] for item in items), 2),
        "start_timestamp": _timestamp(start),
        "end_timestamp": _timestamp(end),
        "net_payment_terms_days": terms,
    }
    if contract_id:
        invoice["contract_id"] = contract_id
    if plan_name:
        invoice["plan_name"] = plan_name
    return invoice


def _state(
    rng: random.Random,
    start: datetime,
    end: datetime,
    current_month: datetime,
    archived: datetime | None,
    provider: str | None,
    *,
    recent: bool,
) -> dict[str, Any]:
    """Status, issue date and billing-provider record of an invoice for [start, end)."""
    if archived is not None and end > archived and start < archived:
        # Archiving a customer voids its open invoices; an unissued one never gets a date.
        return {"status": "VOID"}
    if end > current_month:
        return {"status": "DRAFT"}
    issued = end + timedelta(hours=rng.randrange(1, 30), minutes=rng.randrange(60))
    if rng.random() < 0.03:
        return {"status": "VOID", "issued_at": _timestamp(issued)}
    state: dict[str, Any] = {"status": "FINALIZED", "issued_at": _timestamp(issued)}
    external = _external_invoice(rng, provider, issued, recent=recent)
    if external is not None:
        state["external_invoice"] = external
    return state
