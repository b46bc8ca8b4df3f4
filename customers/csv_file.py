"""The CSV file the export writes: its columns, one row per customer, formula cells
neutralised, and the file as chunks.

UTF-8 with a byte-order mark (Excel), RFC 4180 quoting, CRLF line ends, formula cells
neutralised (OWASP "CSV Injection"), timestamps as ISO 8601 UTC with microseconds:
`2024-03-01T12:00:00.123000Z`, always 27 characters, so sorting them as text sorts by time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from json.encoder import encode_basestring as _json_string  # json.dumps's, non-ASCII kept
from operator import attrgetter, itemgetter
from typing import TypeVar

from msgspec import to_builtins

from customers.metronome import Customer, CustomerPage

Item = TypeVar("Item")

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


# A column's cells, and how they are quoted in a line.
Column = tuple[list[str], Callable[[list[str]], list[str]]]


def _columns(customers: Sequence[Customer], extra_columns: Sequence[str]) -> list[Column]:
    """The cells of `customers`, a column at a time, in `header()` order. Text from
    Metronome is neutralised; the cells this module writes itself can't start a formula:
    the billable status is a word, timestamps start with the year, the custom fields' JSON
    with `{`. A column is built and checked in a few calls into C where it can be, rather
    than cell by cell: an export writes 100,000 rows (bench/README.md, twentieth pass)."""
    statuses = list(map(_STATUS, customers))
    fields = list(map(_FIELDS, customers))
    return [
        (_text_column(list(map(_ID, customers))), _quoted),
        (_text_column(list(map(_NAME, customers))), _quoted),
        (_text_column(list(map(_EXTERNAL_ID, customers))), _quoted),
        (_text_column([ALIAS_SEPARATOR.join(c.ingest_aliases) for c in customers]), _quoted),
        (_text_column([c.salesforce_account_id or "" for c in customers]), _quoted),
        # Words and timestamps this module writes: never a comma, a quote or a line break.
        # The status is a StrEnum, its own word (`.value` is a Python property, per cell).
        (["" if s is None else s.value for s in statuses], _as_they_are),
        (_time_column([None if s is None else s.effective_at for s in statuses]), _as_they_are),
        (_time_column(list(map(_CREATED_AT, customers))), _as_they_are),
        (_time_column(list(map(_UPDATED_AT, customers))), _as_they_are),
        (_time_column(list(map(_ARCHIVED_AT, customers))), _as_they_are),
        (list(map(json_object, fields)), _quoted_json_objects),
        *[(_text_column([f.get(key, "") for f in fields]), _quoted) for key in extra_columns],
    ]


_ID, _NAME, _EXTERNAL_ID = attrgetter("id"), attrgetter("name"), attrgetter("external_id")
_CREATED_AT, _UPDATED_AT = attrgetter("created_at"), attrgetter("updated_at")
_ARCHIVED_AT, _STATUS = attrgetter("archived_at"), attrgetter("billable_status")
_FIELDS = attrgetter("custom_fields")
_FIRST_CHARACTER = itemgetter(slice(0, 1))


def _text_column(values: list[str]) -> list[str]:
    """Text from Metronome, neutralised: most columns of most pages start no cell with a
    formula's character, which one set of first characters tells."""
    if FORMULA_TRIGGERS.isdisjoint(map(_FIRST_CHARACTER, values)):
        return values
    return list(map(neutralise, values))


_UTC_ONLY = frozenset({UTC})
_TZINFO = attrgetter("tzinfo")
# What msgspec writes for a time in UTC with a fraction of a second, and for none.
_TIMESTAMP_LENGTHS = frozenset({0, len("2024-03-01T12:00:00.123000Z")})


def _time_column(values: list[datetime | None]) -> list[str]:
    """`timestamp` of each: in one call into C for a column of times in UTC, each with a
    fraction of a second (nearly all of Metronome's), else time by time. Only UTC: msgspec
    writes another offset to the minute, dropping its seconds (`+00:00:30` as `Z`)."""
    if set(map(_TZINFO, filter(None, values))) <= _UTC_ONLY:
        texts: list[str] = to_builtins(values)  # None stays None, replaced here:
        cells = ["" if text is None else text for text in texts] if None in texts else texts
        if set(map(len, cells)) <= _TIMESTAMP_LENGTHS:
            return cells
    return [timestamp(value) for value in values]


LINE_END = "\r\n"


def csv_line(cells: Sequence[str]) -> str:
    """One row as Python's csv module writes it (RFC 4180, QUOTE_MINIMAL, no line end): a
    cell holding a comma, a quote or a line break between quotes, its quotes doubled; a row
    of one empty cell as `""`, so it is not a blank line. The module looks at every
    character in turn, about 4 µs for a row of 13 cells; str's own searches take under half
    of that (tests/test_csv_file.py holds the two equal)."""
    if len(cells) == 1 and not cells[0]:
        return '""'
    return ",".join(_quoted(list(cells)))


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
        if not page.customers and not first:
            continue
        text = lines(page.customers, extra_columns, positions)
        # A lone surrogate can't be UTF-8; one bad character must not abort a whole export.
        yield ((head + text) if first else text).encode("utf-8", "replace"), len(page.customers)
        first = False
    if first:
        yield head.encode("utf-8"), 0


def lines(
    customers: Sequence[Customer], extra_columns: Sequence[str] = (), positions: Sequence[int] = ()
) -> str:
    """The customers' lines, each ended, as `csv_line` writes their cells in `header()` order,
    built from whole columns: the lines are joined in C."""
    if not customers:
        return ""
    columns = [
        quoted(cells) for cells, quoted in _picked(_columns(customers, extra_columns), positions)
    ]
    if len(columns) == 1:  # a row of one empty cell is `""`, not a blank line
        columns = [[cell or '""' for cell in columns[0]]]
    return LINE_END.join(map(",".join, zip(*columns, strict=True))) + LINE_END


_QUOTED_IN_A_LINE = ('"', ",", "\r")  # and "\n", which joins the column below


def _quoted(cells: list[str]) -> list[str]:
    """The cells as `csv_line` writes them: a column none of whose cells needs quotes
    (most, on most pages) is told by searching it joined into one string."""
    joined = "\n".join(cells)
    if any(c in joined for c in _QUOTED_IN_A_LINE) or joined.count("\n") != len(cells) - 1:
        return [
            '"' + cell.replace('"', '""') + '"'
            if '"' in cell or "," in cell or "\n" in cell or "\r" in cell
            else cell
            for cell in cells
        ]
    return cells


def _as_they_are(cells: list[str]) -> list[str]:
    return cells


def _quoted_json_objects(cells: list[str]) -> list[str]:
    """`_quoted` for `json_object`s, the whole column at once: an object with a field holds
    quotes, so it is quoted, and JSON escapes every line break, so the column joined by
    line breaks can be quoted as one string and cut apart again."""
    if "{}" in cells:
        return _quoted(cells)
    joined = "\n".join(cells).replace('"', '""')
    return ('"' + joined.replace("\n", '"\n"') + '"').split("\n")


def _picked(row: list[Item], positions: Sequence[int]) -> list[Item]:
    return [row[at] for at in positions] if positions else row
