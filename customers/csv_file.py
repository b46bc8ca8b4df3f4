"""The CSV file the export writes: its columns, one row per customer, formula cells
neutralised, and the file as chunks.

UTF-8 with a byte-order mark (Excel), RFC 4180 quoting, CRLF line ends, formula cells
neutralised (OWASP "CSV Injection"), timestamps as ISO 8601 UTC with microseconds:
`2024-03-01T12:00:00.123000Z`, always 27 characters, so sorting them as text sorts by time.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from json.encoder import encode_basestring as _json_string  # json.dumps's, non-ASCII kept

from msgspec import to_builtins

from customers.metronome import Customer, CustomerPage

BOM = "\ufeff"
COLUMNS = (
    "id",
    "name",
    "external_id",
    "ingest_aliases",
    "salesforce_account_id",
    "billable_status",
    "billable_status_effective_at",
    "created_at",
    "updated_at",
    "archived_at",
    "custom_fields",
)
ALIAS_SEPARATOR = "; "

# --- Formula neutralisation ----------------------------------------------------------------
# Reference: https://owasp.org/www-community/attacks/CSV_Injection
# Not defusedcsv (3.0), which we tried: it does not cover a leading tab or carriage
# return, and it rewrites every `|` in a flagged cell to `\|`, changing the text finance
# staff reconcile. This does exactly what the OWASP advice says and nothing more.
# Full-width ＝＋－＠ too: some Excel locales (Japanese, Chinese) read them as their ASCII forms.
FORMULA_TRIGGERS = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")
# A plain decimal number, which a spreadsheet reads as a number, not a formula: -42, +1.5,
# -1e5. ASCII digits only: to a spreadsheet `-٤٢` is not a number, so it is a formula.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def neutralise(value: str) -> str:
    """Prefix `'` to a cell a spreadsheet would run as a formula; leave numbers alone."""
    if value[:1] in FORMULA_TRIGGERS and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


# --- Rows ----------------------------------------------------------------------------------


def header(extra_columns: Sequence[str] = ()) -> list[str]:
    """The header row: COLUMNS, then one `custom_fields.<key>` per configured key."""
    return [neutralise(name) for name in (*COLUMNS, *(f"custom_fields.{k}" for k in extra_columns))]


def timestamp(value: datetime | None) -> str:
    """ISO 8601 in UTC, always with microseconds: `2024-03-01T12:00:00.123000Z`."""
    if value is None:
        return ""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # msgspec writes RFC 3339 in C, a tenth of isoformat()'s time (three of these a row):
    # `...:SS.ffffffZ` in UTC, or `...:SSZ` when the fraction is zero.
    text: str = to_builtins(value)
    return text if value.microsecond else f"{text[:-1]}.000000Z"


def json_object(fields: Mapping[str, str]) -> str:
    """`json.dumps(fields, ensure_ascii=False)` for a flat object of strings, the same text
    about twice as fast: it runs for every row of a 100,000-row export."""
    return (
        "{" + ", ".join([f"{_json_string(k)}: {_json_string(v)}" for k, v in fields.items()]) + "}"
    )


def customer_row(customer: Customer, extra_columns: Sequence[str] = ()) -> list[str]:
    """One customer as CSV cells, in `header()` order. Text from Metronome is neutralised;
    the cells this module writes itself can't start a formula: the billable status is a
    word, timestamps start with the year, the custom fields' JSON with `{`."""
    status = customer.billable_status
    fields = customer.custom_fields
    return [
        neutralise(customer.id),
        neutralise(customer.name),
        neutralise(customer.external_id),
        neutralise(ALIAS_SEPARATOR.join(customer.ingest_aliases)),
        neutralise(customer.salesforce_account_id or ""),
        status.value.value if status else "",
        timestamp(status.effective_at) if status else "",
        timestamp(customer.created_at),
        timestamp(customer.updated_at),
        timestamp(customer.archived_at),
        json_object(fields),
        *[neutralise(fields.get(key, "")) for key in extra_columns],
    ]


LINE_END = "\r\n"


def csv_line(cells: Sequence[str]) -> str:
    """One row as Python's csv module writes it (RFC 4180, QUOTE_MINIMAL, no line end): a
    cell holding a comma, a quote or a line break between quotes, its quotes doubled; a row
    of one empty cell as `""`, so it is not a blank line. The module looks at every
    character in turn, about 4 µs for a row of 13 cells; str's own searches take under half
    of that, and an export writes 100,000 rows (bench/README.md; tests/test_csv_file.py
    holds the two equal)."""
    if len(cells) == 1 and not cells[0]:
        return '""'
    return ",".join(
        [
            '"' + cell.replace('"', '""') + '"'
            if '"' in cell or "," in cell or "\n" in cell or "\r" in cell
            else cell
            for cell in cells
        ]
    )


def csv_chunks(
    pages: Iterable[CustomerPage],
    extra_columns: Sequence[str] = (),
    positions: Sequence[int] = (),
) -> Generator[tuple[bytes, int], None, None]:
    """The file as one chunk per page, each with the number of customers it holds. The
    first chunk carries the BOM and the header with the first page's rows, even if there
    are none. A later page that Metronome sent empty yields nothing. `positions`
    (customers.columns.csv_positions) keeps only those cells of each full row, in that
    order: a person's chosen columns."""
    head = BOM + csv_line(_picked(header(extra_columns), positions)) + LINE_END
    first = True
    for page in pages:
        rows = [customer_row(customer, extra_columns) for customer in page.customers]
        if positions:
            rows = [_picked(row, positions) for row in rows]
        if not rows and not first:
            continue
        text = "".join([csv_line(row) + LINE_END for row in rows])
        # A lone surrogate can't be UTF-8; one bad character must not abort a whole export.
        yield ((head + text) if first else text).encode("utf-8", "replace"), len(rows)
        first = False
    if first:
        yield head.encode("utf-8"), 0


def _picked(row: list[str], positions: Sequence[int]) -> list[str]:
    return [row[at] for at in positions] if positions else row
