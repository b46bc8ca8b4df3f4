"""The columns a person may choose for the customers table and its CSV: one registry, so
the table, the phone cards and the download always agree.

A choice travels in the URL as `columns=name,id,billable,cf.region`: standard keys, and
`cf.<key>` for a custom field. Parsing never fails: unknown or repeated keys are dropped
and reported, so an old link or a view saved before a custom field went away still opens.
With no choice the page keeps its standard table (templates/customers/_table.html) and the
CSV its standard file (customers/export.py).

Each column says how to read it from a `Customer` (for the table, capped for display and
escaped here, so a row is one string for the template: 100 rows x 12 cells through the
template engine would cost more than the whole page may) and where its cell is in the
export's full row (`csv_file.header()` order), which `project()` picks from.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from customers import display
from customers.csv_file import COLUMNS as CSV_COLUMNS
from customers.metronome import Customer

CUSTOM_FIELD_PREFIX = "cf."
MAX_COLUMNS = 30
# A custom-field key longer than this is no key of this dashboard's customers.
MAX_CUSTOM_FIELD_KEY = 200
# The column the CSV adds when a choice lacks it: what joins a row back to Metronome (and,
# through the customer view, to everything else). Documented in docs/saved-views.md.
JOIN_COLUMN = "id"


@dataclass(frozen=True, slots=True)
class Column:
    key: str  # in the URL
    header: str  # the table's heading and the phone card's label
    csv_header: str  # the CSV's heading (csv_file.header()'s spelling)
    cell: Callable[[Customer], str]  # the table cell's HTML, escaped
    # What follows the value in its cell, escaped: outside the link when the column is the
    # row's first (a "+N" that opens more cannot sit inside a link).
    after: Callable[[Customer], str] | None = None

    def html(self, customer: Customer) -> str:
        return self.cell(customer) + (self.after(customer) if self.after else "")


def _text(value: str) -> str:
    # The standard library's escape, as Django's `escape` is, without making a SafeString of
    # each of 1,200 cells: the row is marked safe once.
    return html.escape(display._capped(value))


def _code(value: str) -> str:
    return f"<code>{_text(value)}</code>" if value else ""


def _date(value: datetime | None) -> str:
    return display._date(value) if value is not None else ""


def _billable(customer: Customer) -> str:
    status = customer.billable_status
    value = status.value.value if status else "unset"
    label = display.BILLABLE_LABELS.get(value, "Not set")
    return f'<span class="badge badge-{value}">{label}</span>'


def _first_alias(customer: Customer) -> str:
    aliases = customer.ingest_aliases
    return _code(aliases[0]) if aliases else ""


def _other_aliases(customer: Customer) -> str:
    """The "+N" that opens the aliases after the first, as the standard table shows them: a
    row listing 20 aliases made a cell taller than the screen."""
    aliases = customer.ingest_aliases
    if len(aliases) < 2 or not aliases[0]:  # the standard table's cell is empty then
        return ""
    others = "".join(f" {_code(alias)}" for alias in aliases[1 : display.MAX_SHOWN_ALIASES + 1])
    summary = f'+{len(aliases) - 1}<span class="visually-hidden"> more</span>'
    return f" <details><summary>{summary}</summary>{others}</details>"


def _billable_since(customer: Customer) -> str:
    status = customer.billable_status
    return _date(status.effective_at) if status and status.effective_at else ""


STANDARD: tuple[Column, ...] = (
    Column("name", "Name", "name", lambda c: _text(c.name)),
    Column("id", "Metronome ID", "id", lambda c: _code(c.id)),
    Column("external_id", "External ID", "external_id", lambda c: _code(c.external_id)),
    Column("aliases", "Ingest aliases", "ingest_aliases", _first_alias, _other_aliases),
    Column(
        "salesforce",
        "Salesforce ID",
        "salesforce_account_id",
        lambda c: _code(c.salesforce_account_id or ""),
    ),
    Column("billable", "Billable", "billable_status", _billable),
    Column("billable_since", "Billable since", "billable_status_effective_at", _billable_since),
    Column("created", "Created", "created_at", lambda c: _date(c.created_at)),
    Column("updated", "Updated", "updated_at", lambda c: _date(c.updated_at)),
    Column("archived", "Archived", "archived_at", lambda c: _date(c.archived_at)),
)
BY_KEY = {column.key: column for column in STANDARD}
# What the standard table shows, in its order: the chooser starts from these.
DEFAULT_KEYS = (
    "name",
    "id",
    "aliases",
    "salesforce",
    "billable",
    "created",
    "updated",
    "archived",
)


def custom_field_column(key: str) -> Column:
    return Column(
        f"{CUSTOM_FIELD_PREFIX}{key}",
        key,
        f"custom_fields.{key}",
        lambda c: _text(c.custom_fields.get(key, "")),
    )


@dataclass(frozen=True, slots=True)
class ColumnChoice:
    """A validated `columns` parameter: the columns in order, and what was dropped."""

    columns: tuple[Column, ...]
    dropped: tuple[str, ...] = ()

    @property
    def chosen(self) -> bool:
        return bool(self.columns)

    @property
    def param(self) -> str:
        """The canonical `columns` value ("" for the standard table)."""
        return ",".join(column.key for column in self.columns)

    @property
    def custom_field_keys(self) -> tuple[str, ...]:
        return tuple(
            column.key.removeprefix(CUSTOM_FIELD_PREFIX)
            for column in self.columns
            if column.key.startswith(CUSTOM_FIELD_PREFIX)
        )

    def csv_columns(self) -> tuple[Column, ...]:
        """The CSV's columns: the choice, with the join column first when it lacks it."""
        if not self.columns or any(column.key == JOIN_COLUMN for column in self.columns):
            return self.columns
        return (BY_KEY[JOIN_COLUMN], *self.columns)


NO_CHOICE = ColumnChoice(())
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def parse(value: str | None, known_custom_fields: Iterable[str] | None = None) -> ColumnChoice:
    """`columns=...` read leniently: each unknown, repeated or hostile key is dropped (and
    named in `dropped`), never an error. `known_custom_fields` (the index's keys) limits
    `cf.` columns to keys some customer has; None accepts any well-formed key."""
    if not value:
        return NO_CHOICE
    known = None if known_custom_fields is None else set(known_custom_fields)
    columns: list[Column] = []
    seen: set[str] = set()
    dropped: list[str] = []
    for raw in value.split(","):
        key = raw.strip()
        if not key:
            continue
        column: Column | None = BY_KEY.get(key)
        if column is None and key.startswith(CUSTOM_FIELD_PREFIX):
            name = key.removeprefix(CUSTOM_FIELD_PREFIX)
            well_formed = 0 < len(name) <= MAX_CUSTOM_FIELD_KEY and not _CONTROL.search(name)
            if well_formed and (known is None or name in known):
                column = custom_field_column(name)
        if column is None or key in seen or len(columns) >= MAX_COLUMNS:
            dropped.append(key[:60])
            continue
        seen.add(key)
        columns.append(column)
    return ColumnChoice(tuple(columns), tuple(dropped))


def available(custom_field_keys: Iterable[str]) -> tuple[Column, ...]:
    """Every column the chooser offers: the standard ones, then each custom-field key."""
    return (*STANDARD, *(custom_field_column(key) for key in custom_field_keys))


# --- The table ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChosenRow:
    id: str
    html: SafeString  # the row's cells, the first a row header linking to the customer


# Not a column to choose: a pasted-Salesforce-ID search adds it to any table, chosen or not,
# after the chosen columns (what each row was found by is the search's, not the customer's).
MATCHED_AS_HEADER = "Matched as"


def rows(
    customers: Iterable[Customer],
    choice: ColumnChoice,
    notes: Sequence[str] = (),
    matched_as: Mapping[str, str] | None = None,
) -> list[ChosenRow]:
    """The chosen columns of each customer, escaped here (see the module's docstring). The
    first cell is the row's header and opens the customer, whichever column it is. With
    `matched_as` (customer ID -> the pasted ID it matched), a last cell says it."""
    first, *rest = choice.columns
    list_url = reverse("customers:list")  # each customer's view is under it (display.py)
    built = []
    for number, customer in enumerate(customers):
        note = notes[number] if number < len(notes) else ""
        badge = f' <span class="badge badge-stale">{escape(note)}</span>' if note else ""
        head = first.cell(customer) or escape(display._capped(customer.id))
        after_head = first.after(customer) if first.after else ""
        cells = "".join(f"<td>{column.html(customer)}</td>" for column in rest)
        if matched_as is not None:
            pasted = _text(matched_as.get(customer.id, ""))
            cells += f'<td data-matched-as="{pasted}"><code>{pasted}</code></td>'
        url = escape(f"{list_url}{quote(customer.id, safe='')}/")
        header = f'<th><a href="{url}">{head}</a>{after_head}{badge}</th>'
        # Every value above is escaped.
        built.append(ChosenRow(id=customer.id, html=mark_safe(header + cells)))  # noqa: S308
    return built


# --- The CSV ----------------------------------------------------------------------------------


def csv_positions(choice: ColumnChoice) -> tuple[int, ...]:
    """Where each CSV column of the choice is in the export's full row: `csv_file.header()`
    with `extra_columns=choice.custom_field_keys`."""
    custom = choice.custom_field_keys
    positions = []
    for column in choice.csv_columns():
        if column.key.startswith(CUSTOM_FIELD_PREFIX):
            positions.append(
                len(CSV_COLUMNS) + custom.index(column.key.removeprefix(CUSTOM_FIELD_PREFIX))
            )
        else:
            positions.append(CSV_COLUMNS.index(column.csv_header))
    return tuple(positions)


# --- The phone cards' labels ------------------------------------------------------------------


def css_string(text: str) -> str:
    """`text` as a CSS string: every character but letters, digits and spaces escaped, so a
    hostile custom-field key cannot end the string or the rule."""
    return (
        '"'
        + "".join(
            char if char.isascii() and (char.isalnum() or char == " ") else f"\\{ord(char):06x}"
            for char in text
        )
        + '"'
    )


def card_labels_css(choice: ColumnChoice) -> str:
    """The phone cards' labels for this choice (the standard table's are in dashboard.css,
    by position; a chosen table's positions differ per choice, and a label per cell would
    add kilobytes to every page)."""
    cell = ".customers.chosen td:nth-child({})::before {{ content: {}; }}"
    headers = [column.header for column in choice.columns[1:]] + [MATCHED_AS_HEADER]
    # The last label is for the column a pasted-Salesforce-ID search adds (`rows`).
    rules = [
        cell.format(number, css_string(header)) for number, header in enumerate(headers, start=2)
    ]
    return "@media (max-width: 700px) {\n" + "\n".join(rules) + "\n}\n"
