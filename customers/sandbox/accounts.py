"""Seeded contracts, commits, credits and alerts for a sandbox customer, in Metronome's wire
format (the official SDK's `ContractV2`, `Commit`, `Credit` and `CustomerAlert`).

Consistent with the customer's invoices (`invoices.py`): a customer whose invoices name a
contract has that contract (current, or ended when the customer was archived), in the
invoices' credit type and payment terms, with commits sized from what the invoices bill;
a customer on a plan (no `contract_id`) has no contract, no commit and at most a plan alert.

Dates are anchored on `today` (the day the sandbox answers, unless the caller fixes it), so
the demo always has credits expiring within 30 days and a contract year under way; the same
customer and day always give the same data.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from .invoices import USD_CENTS

_CONTRACT_NAMES = ("Enterprise agreement", "Growth commit", "Scale annual", "Platform contract")
_PRODUCTS = {
    "commit": {"id": "8f3b6a52-1c7e-4d2a-9a55-0c2b7e1f4a10", "name": "Prepaid commit"},
    "minimum": {"id": "3c9d2f0e-6b4a-4e8f-8d21-5a7c9e0b1d32", "name": "Minimum spend"},
    "credit": {"id": "d4e5f6a7-2b3c-4d5e-8f90-1a2b3c4d5e6f", "name": "Platform credits"},
}
# The share of customers on a contract whose prepaid commit is nearly spent, and whose
# onboarding credit runs out within 30 days: common enough to find in a demo.
_NEARLY_SPENT = 0.3
_EXPIRING_SOON = 0.45


@dataclass(frozen=True)
class Account:
    """What the contract-area endpoints serve for one customer, in wire format."""

    contracts: tuple[dict[str, Any], ...]  # oldest start first
    balances: tuple[dict[str, Any], ...]  # every commit and credit, `balance` included
    alerts: tuple[dict[str, Any], ...]  # CustomerAlert objects


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _years_later(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year + years, day=28)


def _anniversary_before(signed: datetime, today: datetime) -> datetime:
    """The last anniversary of `signed` on or before `today`."""
    years = max(0, today.year - signed.year)
    moment = _years_later(signed, years)
    return _years_later(signed, years - 1) if moment > today else moment


def generate_account(
    customer: Mapping[str, Any], invoices: Sequence[Mapping[str, Any]], today: date
) -> Account:
    rng = random.Random(f"accounts:{customer['id']}")
    now = _midnight(today)
    contract_id = next((i["contract_id"] for i in invoices if i.get("contract_id")), None)
    if contract_id is None:
        return Account((), (), _plan_alerts(rng, invoices))

    credit_type = dict(invoices[-1]["credit_type"]) if invoices else dict(USD_CENTS)
    terms = invoices[-1].get("net_payment_terms_days", 30) if invoices else 30
    usage = [i["total"] for i in invoices if i["type"] == "USAGE" and i["total"] > 0][-6:]
    # A month's bill in the credit type's units; a free account still signs a small commit.
    monthly = max(sum(usage) / len(usage) if usage else 0.0, 50_000.0)
    created = _parse(customer["created_at"])
    signed = created.replace(hour=0, minute=0, second=0, microsecond=0)
    archived_at = customer.get("archived_at")
    ended = (
        _parse(archived_at).replace(hour=0, minute=0, second=0, microsecond=0)
        if archived_at
        else None
    )

    year_start = _anniversary_before(signed, min(now, ended or now))
    year_end = _years_later(year_start, 1)
    if ended is not None:
        end: datetime | None = max(ended, signed + timedelta(days=1))
    elif rng.random() < 0.4:
        end = None  # open-ended
    else:
        end = year_end
    commit_amount = float(round(monthly * 12 * rng.uniform(0.9, 1.2), -2))
    # The contract's value covers what it bills on a schedule too: the annual platform fee
    # some customers pay (their SCHEDULED invoices), which alone can exceed a small commit.
    annual_fee = max(
        (
            invoice["total"]
            for invoice in invoices
            if invoice["type"] == "SCHEDULED" and invoice.get("contract_id") == contract_id
        ),
        default=0.0,
    )
    name = _CONTRACT_NAMES[rng.randrange(len(_CONTRACT_NAMES))]
    current = _contract(
        contract_id, customer["id"], name, signed, end, terms, commit_amount + annual_fee, signed
    )
    contracts = [current]

    balances: list[dict[str, Any]] = []
    segment_end = min(year_end, end) if end else year_end
    elapsed = max(0.0, min(1.0, (min(now, segment_end) - year_start) / (segment_end - year_start)))
    nearly_spent = ended is None and rng.random() < _NEARLY_SPENT
    if nearly_spent:
        remaining = commit_amount * rng.uniform(0.01, 0.06)
    elif ended is not None:
        remaining = 0.0
    else:
        remaining = commit_amount * max(0.0, 1 - elapsed * rng.uniform(0.8, 1.15))
    balances.append(
        _commit(
            rng,
            "PREPAID",
            "Annual prepaid commit",
            "commit",
            contract_id,
            credit_type,
            commit_amount,
            remaining,
            year_start,
            segment_end,
        )
    )
    if rng.random() < 0.25:
        minimum = float(round(commit_amount * 0.8, -2))
        spent = min(minimum, minimum * elapsed * rng.uniform(0.9, 1.3))
        balances.append(
            _commit(
                rng,
                "POSTPAID",
                "Minimum spend commitment",
                "minimum",
                contract_id,
                credit_type,
                minimum,
                minimum - spent,
                year_start,
                segment_end,
            )
        )

    credit = float(round(monthly * rng.uniform(0.5, 1.5), -2))
    expiring = ended is None and rng.random() < _EXPIRING_SOON
    credit_start = now - timedelta(days=rng.randrange(30, 200))
    credit_end = now + timedelta(days=rng.randrange(4, 28) if expiring else rng.randrange(60, 240))
    if ended is not None:
        credit_start, credit_end = ended - timedelta(days=90), ended
    balances.append(
        _credit(
            rng,
            "Onboarding credit",
            contract_id,
            credit_type,
            credit,
            0.0 if ended else credit * rng.uniform(0.15, 0.9),
            credit_start,
            credit_end,
        )
    )
    if rng.random() < 0.4:
        # Spent in full: shown last, not hidden.
        goodwill = float(round(monthly * 0.2, -2)) or 1000.0
        balances.append(
            _credit(
                rng,
                "Service credit (incident)",
                contract_id,
                credit_type,
                goodwill,
                0.0,
                credit_start,
                credit_end + timedelta(days=90),
            )
        )

    if rng.random() < 0.35:
        # A pilot before the contract, long ended.
        pilot_id = _uuid(rng)
        pilot = _contract(
            pilot_id,
            customer["id"],
            "Pilot",
            signed - timedelta(days=60),
            signed,
            terms,
            0.0,
            signed - timedelta(days=60),
        )
        contracts.insert(0, pilot)
        balances.append(
            _credit(
                rng,
                "Pilot credit",
                pilot_id,
                credit_type,
                100_000.0,
                0.0,
                signed - timedelta(days=60),
                signed,
            )
        )
    if end is not None and ended is None and rng.random() < 0.5:
        # The renewal is signed already and starts when this contract ends.
        renewal = _contract(
            _uuid(rng),
            customer["id"],
            f"Renewal {end.year}",
            end,
            _years_later(end, 1),
            terms,
            float(round(commit_amount * 1.1, -2)) + annual_fee,
            now - timedelta(days=rng.randrange(1, 20)),
        )
        contracts.append(renewal)

    by_contract: dict[str, list[dict[str, Any]]] = {}
    for item in balances:
        by_contract.setdefault(item["contract"]["id"], []).append(item)
    for contract in contracts:
        owned = by_contract.get(contract["id"], [])
        contract["commits"] = [item for item in owned if item["type"] != "CREDIT"]
        contract["credits"] = [item for item in owned if item["type"] == "CREDIT"]

    alerts = _contract_alerts(
        rng,
        credit_type,
        commit_amount,
        monthly,
        remaining,
        expiring,
        credit_end - now,
        ended is not None,
    )
    return Account(tuple(contracts), tuple(balances), alerts)


def _contract(
    contract_id: str,
    customer_id: str,
    name: str,
    start: datetime,
    end: datetime | None,
    terms: int,
    value: float,
    created: datetime,
) -> dict[str, Any]:
    contract: dict[str, Any] = {
        "id": contract_id,
        "customer_id": customer_id,
        "name": name,
        "starting_at": _timestamp(start),
        "created_at": _timestamp(created),
        "created_by": "sales@sandbox.example",
        "net_payment_terms_days": terms,
        "total_contract_value": value,
        "rate_card_id": "5b3e8d4c-9f1a-4c2b-8e7d-6a5f4e3d2c1b",
        "commits": [],
        "credits": [],
        "overrides": [],
        "scheduled_charges": [],
        "transitions": [],
        "usage_filter": [],
        "usage_statement_schedule": {
            "billing_anchor_date": _timestamp(start),
            "frequency": "MONTHLY",
        },
        "custom_fields": {},
    }
    if end is not None:
        contract["ending_before"] = _timestamp(end)
    return contract


def _schedule(
    rng: random.Random,
    credit_type: Mapping[str, str],
    amount: float,
    start: datetime,
    end: datetime,
) -> dict[str, Any]:
    return {
        "credit_type": dict(credit_type),
        "schedule_items": [
            {
                "id": _uuid(rng),
                "amount": amount,
                "starting_at": _timestamp(start),
                "ending_before": _timestamp(end),
            }
        ],
    }


def _commit(
    rng: random.Random,
    commit_type: str,
    name: str,
    product: str,
    contract_id: str,
    credit_type: Mapping[str, str],
    amount: float,
    balance: float,
    start: datetime,
    end: datetime,
    *,
    priority: int = 100,
) -> dict[str, Any]:
    return {
        "id": _uuid(rng),
        "type": commit_type,
        "name": name,
        "product": dict(_PRODUCTS[product]),
        "contract": {"id": contract_id},
        "created_at": _timestamp(start),
        "access_schedule": _schedule(rng, credit_type, amount, start, end),
        "balance": round(max(balance, 0.0), 2),
        "priority": priority,
    }


def _credit(
    rng: random.Random,
    name: str,
    contract_id: str,
    credit_type: Mapping[str, str],
    amount: float,
    balance: float,
    start: datetime,
    end: datetime,
) -> dict[str, Any]:
    """A credit is a commit of type CREDIT on the credit product, drawn down before commits."""
    return _commit(
        rng,
        "CREDIT",
        name,
        "credit",
        contract_id,
        credit_type,
        amount,
        balance,
        start,
        end,
        priority=50,
    )


def _alert(
    rng: random.Random,
    name: str,
    alert_type: str,
    threshold: float,
    status: str | None,
    credit_type: Mapping[str, str] | None,
    *,
    enabled: bool = True,
) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "id": _uuid(rng),
        "name": name,
        "status": "enabled" if enabled else "disabled",
        "threshold": threshold,
        "type": alert_type,
        "updated_at": "2026-10-01T09:30:00.000Z",
    }
    if credit_type is not None:
        alert["credit_type"] = dict(credit_type)
    return {"alert": alert, "customer_status": status if enabled else None, "triggered_by": None}


def _contract_alerts(
    rng: random.Random,
    credit_type: Mapping[str, str],
    commit_amount: float,
    monthly: float,
    remaining: float,
    expiring: bool,
    left: timedelta,
    ended: bool,
) -> tuple[dict[str, Any], ...]:
    # In alarm exactly when the commit's balance, as the balances region shows it, is under
    # the threshold: a demo whose alert says OK above "$514.85 left of $41,180" is doubted.
    low_balance = float(round(commit_amount * 0.1, -2))
    alerts = [
        _alert(
            rng,
            "Prepaid commit below 10 %",
            "low_remaining_commit_balance_reached",
            low_balance,
            "in_alarm" if not ended and remaining < low_balance else "ok",
            credit_type,
        ),
        _alert(
            rng,
            "Monthly spend above budget",
            "spend_threshold_reached",
            float(round(monthly * 1.5, -2)),
            "in_alarm" if rng.random() < 0.12 else ("evaluating" if rng.random() < 0.1 else "ok"),
            credit_type,
        ),
    ]
    if expiring or rng.random() < 0.3:
        in_alarm = expiring and left <= timedelta(days=7)
        alerts.append(
            _alert(
                rng,
                "Credit expires within 7 days",
                "low_remaining_days_for_contract_credit_segment_reached",
                7.0,
                "in_alarm" if in_alarm else "ok",
                None,
            )
        )
    if rng.random() < 0.2:
        alerts.append(
            _alert(
                rng,
                "Invoice over limit (paused)",
                "invoice_total_reached",
                float(round(monthly * 3, -2)),
                None,
                credit_type,
                enabled=False,
            )
        )
    if ended:
        alerts = [
            _alert(
                rng,
                a["alert"]["name"],
                a["alert"]["type"],
                a["alert"]["threshold"],
                None,
                a["alert"].get("credit_type"),
                enabled=False,
            )
            for a in alerts
        ]
    return tuple(alerts)


def _plan_alerts(
    rng: random.Random, invoices: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, Any], ...]:
    if not invoices or rng.random() < 0.5:
        return ()
    credit_type = invoices[-1]["credit_type"]
    top = max(i["total"] for i in invoices)
    status = "in_alarm" if rng.random() < 0.2 else "ok"
    return (
        _alert(
            rng,
            "Invoice total over limit",
            "invoice_total_reached",
            float(round(max(top, 1000.0) * 1.2, -2)),
            status,
            credit_type,
        ),
    )
