"""How the customer view writes invoice amounts, periods and Metronome's upper-case codes."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext

from django import template
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

from customers.metronome import CreditType, Invoice

register = template.Library()

# Metronome's built-in credit type for US dollars: amounts are in cents.
USD_CENTS = "USD (cents)"
MINUS = "\u2212"


@register.filter
def amount(total: float, credit_type: CreditType) -> str:
    """`$1,234.57` for USD (cents); otherwise the number and the credit type's name, since
    a custom pricing unit has no currency symbol (`12,345.5 Compute credits`)."""
    value = Decimal(repr(total))
    sign = MINUS if value < 0 else ""
    # Any finite float (up to 1.8e308) to the cent: the default 28 digits would raise.
    with localcontext() as context:
        context.prec = 400
        if credit_type.name == USD_CENTS:
            dollars = (abs(value) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            return f"{sign}${dollars:,.2f}"
        number = f"{abs(value).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,.2f}"
    return f"{sign}{number.rstrip('0').rstrip('.')} {credit_type.name}"


@register.filter
def billing_period(invoice: Invoice) -> str:
    """`Oct 2026` for a calendar month, else first and last day; the end is exclusive."""
    start, end = invoice.start_timestamp, invoice.end_timestamp
    if start is None or end is None:
        return ""
    last_day = (end - timedelta(microseconds=1)).date() if end > start else start.date()
    if _is_month_start(start) and _is_month_start(end) and last_day.month == start.month:
        return start.strftime("%b %Y")
    if last_day == start.date():
        return _day(start.date())
    return f"{_day(start.date())} – {_day(last_day)}"


@register.filter
def period_cell(period: str) -> SafeString:
    """A billing period for its table cell: a range may break after its dash, a date never
    inside itself (at a laptop's width a range did not fit the side panel on one line)."""
    parts = ((part,) for part in period.split(" – "))
    return format_html_join(" – ", '<span class="nowrap">{}</span>', parts)


@register.filter
def wire_label(code: str) -> str:
    """`PAYMENT_FAILED` -> `Payment failed`."""
    return code.replace("_", " ").capitalize()


def _is_month_start(moment: datetime) -> bool:
    return moment.day == 1 and moment.time() == time(0)


def _day(day: date) -> str:
    return f"{day.day} {day:%b %Y}"
