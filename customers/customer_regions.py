"""How each region of the customer view orders and draws what Metronome sent: the current
contract first, zero balances last, alerts in alarm first, usage as bars whose geometry is
computed here so the template only writes SVG attributes (the CSP allows no inline style).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from customers.metronome.alerts import Alert
from customers.metronome.balances import Balance
from customers.metronome.contracts import Contract, Phase
from customers.metronome.lists import Bounded
from customers.metronome.usage import MetricUsage, Usage

# The chart's drawing box, in SVG user units; the browser scales it to the region's width.
CHART_WIDTH = 300
CHART_HEIGHT = 80
BAR_GAP = 2


@dataclass(frozen=True, slots=True)
class ContractRow:
    contract: Contract
    phase: Phase


def contract_rows(contracts: Bounded[Contract], now: datetime) -> list[ContractRow]:
    """Current contracts first (newest start first), then future ones (soonest first), then
    ended ones (latest end first)."""
    rows = [ContractRow(c, c.phase(now)) for c in contracts.items]
    current = sorted(
        (r for r in rows if r.phase is Phase.CURRENT),
        key=lambda r: r.contract.starting_at,
        reverse=True,
    )
    future = sorted(
        (r for r in rows if r.phase is Phase.FUTURE), key=lambda r: r.contract.starting_at
    )
    ended = sorted(
        (r for r in rows if r.phase is Phase.ENDED),
        key=lambda r: r.contract.ending_before or r.contract.starting_at,
        reverse=True,
    )
    return current + future + ended


@dataclass(frozen=True, slots=True)
class BalanceRow:
    balance: Balance
    expires_soon: bool


def balance_rows(balances: Bounded[Balance], now: datetime) -> list[BalanceRow]:
    """Those expiring within 30 days first, then the rest with something left (soonest end
    first), then those spent or expired: last, not hidden."""
    far = datetime.max.replace(tzinfo=now.tzinfo)
    rows = [BalanceRow(b, b.expires_soon(now)) for b in balances.items]
    return sorted(
        rows,
        key=lambda r: (r.balance.is_empty, not r.expires_soon, r.balance.access_end or far),
    )


_ALARM_ORDER = {"in_alarm": 0, "evaluating": 1, "ok": 2, None: 3}


def alert_rows(alerts: Bounded[Alert]) -> list[Alert]:
    """In alarm first, then being evaluated, then fine, then not evaluated (disabled)."""
    return sorted(alerts.items, key=lambda a: (_ALARM_ORDER.get(a.customer_status, 3), a.name))


@dataclass(frozen=True, slots=True)
class Bar:
    day: datetime
    value: float | None
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class Chart:
    metric: MetricUsage
    bars: tuple[Bar, ...]
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT


def usage_charts(usage: Usage) -> list[Chart]:
    charts = []
    for metric in usage.metrics:
        count = max(len(metric.days), 1)
        slot = CHART_WIDTH / count
        peak = metric.peak
        bars = []
        for index, day in enumerate(metric.days):
            value = day.value if day.value is not None and day.value > 0 else 0.0
            # A day with usage gets at least a sliver, so it never reads as none.
            height = 0.0 if peak <= 0 or value == 0 else max(1.0, value / peak * (CHART_HEIGHT - 2))
            bars.append(
                Bar(
                    day=day.start,
                    value=day.value,
                    x=round(index * slot + BAR_GAP / 2, 2),
                    y=round(CHART_HEIGHT - height, 2),
                    width=round(max(slot - BAR_GAP, 1.0), 2),
                    height=round(height, 2),
                )
            )
        charts.append(Chart(metric, tuple(bars)))
    return charts
