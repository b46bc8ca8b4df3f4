"""How the customer view's regions write numbers, days and alert thresholds."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from html import escape  # what Django's escape calls, without its SafeString per value

from django import template
from django.utils.safestring import SafeString, mark_safe

from customers.customer_regions import Chart
from customers.metronome.alerts import Alert
from customers.templatetags.invoice_format import MINUS, amount

register = template.Library()

# Alert types whose threshold counts days or percent rather than an amount.
_DAY_THRESHOLDS = ("low_remaining_days",)
_PERCENT_THRESHOLDS = ("percentage",)


_CENT = Decimal("0.01")
# Below this, a value to the cent fits the default context's 28 digits.
_FITS_DEFAULT_PRECISION = 1e24
# Below this every whole float is the integer it reads as (2 ** 53).
_EXACT_INTEGERS = 2.0**53


@register.filter
def number(value: float | None) -> str:
    """`12,345.67`, `1,200`: two decimals at most, none when whole; `–` for no value."""
    if value is None or not math.isfinite(value):
        return "–"
    if value % 1 == 0 and abs(value) < _EXACT_INTEGERS:  # a whole float, or an int (a sum)
        # Most usage is whole (events, seats): no Decimal to round it through.
        return f"{MINUS if value < 0 else ''}{abs(int(value)):,}"
    if abs(value) < _FITS_DEFAULT_PRECISION:
        # The usual case, and a usage chart has 60 of them a metric: no context to set up.
        rounded = Decimal(repr(value)).quantize(_CENT, rounding=ROUND_HALF_UP)
    else:
        # Any finite float (up to 1.8e308) to the cent: the default 28 digits raised on a
        # quantity of 1e26 from the API, and the invoice's page answered 500.
        with localcontext() as context:
            context.prec = 400
            rounded = Decimal(repr(value)).quantize(_CENT, rounding=ROUND_HALF_UP)
    text = f"{abs(rounded):,.2f}".rstrip("0").rstrip(".")
    return f"{MINUS if rounded < 0 else ''}{text}"


@register.filter
def day(moment: datetime | None) -> str:
    """`3 Dec 2026` (UTC)."""
    if moment is None:
        return ""
    return f"{moment.day} {moment:%b %Y}"


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@register.filter
def short_day(moment: datetime) -> str:
    """`Wed 3 Dec`, in English whatever the server's locale (a usage chart writes 60 of them
    a metric: a look-up, not two `strftime` calls)."""
    return f"{_WEEKDAYS[moment.weekday()]} {moment.day} {_MONTHS[moment.month - 1]}"


@register.filter
def percent(share: float) -> str:
    return f"{share * 100:.0f} %"


@register.filter
def threshold(alert: Alert) -> str:
    """An alert's threshold in its own terms: an amount, days or percent, else a count."""
    if any(marker in alert.type for marker in _DAY_THRESHOLDS):
        return f"{number(alert.threshold)} days"
    if any(marker in alert.type for marker in _PERCENT_THRESHOLDS):
        return f"{number(alert.threshold)} %"
    if alert.credit_type is not None:
        return amount(alert.threshold, alert.credit_type)
    return number(alert.threshold)


@register.filter
def alert_type(code: str) -> str:
    """`low_remaining_commit_balance_reached` -> `Low remaining commit balance`."""
    words = code.removesuffix("_reached").replace("_", " ")
    return words[:1].upper() + words[1:]


@register.filter
def last_day(end: datetime | None) -> datetime | None:
    """The last moment before an exclusive end: a period ending before 1 Jan ends 31 Dec."""
    if end is None:
        return None
    return end - timedelta(microseconds=1)


# The usage chart is the page's largest part (a bar and a table row per metric and day):
# built here rather than by the template language, whose variable lookups made it most of
# the page's rendering time. The one text in it, the day and its value, is escaped.


def usage_day_texts(chart: Chart) -> list[tuple[str, str]]:
    """Each bar's day and value as escaped text, made once for the chart's bars and its
    table (`usage_bars`, `usage_rows`): 60 formatted numbers a metric rather than 120."""
    return [(escape(short_day(bar.day)), escape(number(bar.value))) for bar in chart.bars]


@register.simple_tag
def usage_bars(chart: Chart, texts: list[tuple[str, str]]) -> SafeString:
    """One focusable bar per day. Only the first is in the Tab order: a chart is one stop
    and the arrow keys move between its days (static/js/dashboard.js), rather than 30 Tabs
    a chart to get past it. `texts` are `usage_day_texts(chart)`."""
    bars = []
    for position, (bar, (day_text, value_text)) in enumerate(zip(chart.bars, texts, strict=True)):
        label = f"{day_text}: {value_text}"
        x, width = f"{bar.x:.2f}", f"{bar.width:.2f}"
        tabindex = "0" if position == 0 else "-1"
        bars.append(
            f'<g class="bar" tabindex="{tabindex}" role="img" aria-label="{label}">'
            f"<title>{label}</title>"
            f'<rect class="bar-hit" x="{x}" y="0" width="{width}" height="{chart.height}"></rect>'
            f'<rect class="bar-fill" x="{x}" y="{bar.y:.2f}" width="{width}" '
            f'height="{bar.height:.2f}"></rect></g>'
        )
    return mark_safe("\n".join(bars))  # noqa: S308 (every text escaped by usage_day_texts)


@register.simple_tag
def usage_rows(texts: list[tuple[str, str]]) -> SafeString:
    """The chart's table: a row per day, from `usage_day_texts(chart)`."""
    rows = (
        f'<tr><th scope="row">{day_text}</th><td class="number">{value_text}</td></tr>'
        for day_text, value_text in texts
    )
    return mark_safe("\n".join(rows))  # noqa: S308 (every text escaped by usage_day_texts)
