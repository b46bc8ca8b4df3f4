"""customers/csv_file.py: the file's columns, each customer's cells, formula cells
neutralised as OWASP says, and the file as chunks."""

import csv
import io
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customers import csv_file
from customers.metronome import (
    BillableStatus,
    CurrentBillableStatus,
    Customer,
    CustomerPage,
)
from tests.factories import CSV_BOM, csv_cells, numbered_wire_customer

pytestmark = pytest.mark.django_db

# --- Formula neutralisation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=1+2", "'=1+2"),
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("+1 555 0100", "'+1 555 0100"),
        # The pipe is left as it is: the cell's text must not change beyond the prefix.
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTab-led note", "'\tTab-led note"),
        ("\rCR-led note", "'\rCR-led note"),
        ("-", "'-"),
        ("-inf", "'-inf"),
        ("-1,234", "'-1,234"),
        ("-٤٢", "'-٤٢"),  # Arabic-Indic digits are text to a spreadsheet
        ("-42", "-42"),
        ("+42", "+42"),
        ("-1.5", "-1.5"),
        ("-.5", "-.5"),
        ("-1e5", "-1e5"),
        ("1e5", "1e5"),
        ("0042", "0042"),
        ("", ""),
        ("Smith, Jones & Co.", "Smith, Jones & Co."),
        ("Zürich Datenwerk AG", "Zürich Datenwerk AG"),
        ("a=b", "a=b"),
        (" =1+2", " =1+2"),
        ("＝1+2", "'＝1+2"),
        ("＋1", "'＋1"),
        ("－1", "'－1"),
        ("＠SUM(A1)", "'＠SUM(A1)"),
    ],
)
def test_cells_a_spreadsheet_would_run_as_formulas_get_a_quote_and_numbers_do_not(cell, expected):
    assert csv_file.neutralise(cell) == expected


def test_a_customer_row_has_every_column_in_order_and_in_utc():
    customer = Customer.from_wire(
        numbered_wire_customer(
            1,
            "=cmd",
            ingest_aliases=["-alias-a", "alias-b"],
            customer_config={"salesforce_account_id": "001Dn00000AbCdEIAZ"},
            custom_fields={"region": "eu-west", "notes": "@SUM(A1)"},
            created_at="2024-03-01T14:00:00.5+02:00",
            archived_at="2025-01-01T00:00:00Z",
            current_billable_status={"value": "unbillable", "effective_at": None},
        )
    )

    row = csv_cells(customer, ["notes", "missing"])

    assert row == [
        "00000000-0000-0000-0000-000000000001",
        "'=cmd",
        "ext-1",
        "'-alias-a; alias-b",
        "001Dn00000AbCdEIAZ",
        "unbillable",
        "",
        "2024-03-01T12:00:00.500000Z",
        "2024-03-02T12:00:01.000000Z",
        "2025-01-01T00:00:00.000000Z",
        '{"region": "eu-west", "notes": "@SUM(A1)"}',
        "'@SUM(A1)",
        "",
    ]


@given(st.dictionaries(st.text(), st.text()))
def test_the_custom_fields_json_is_exactly_what_json_dumps_writes(fields):
    assert csv_file.json_object(fields) == json.dumps(fields, ensure_ascii=False)


def _written_by_the_csv_module(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


# Cells mostly of the characters that make the csv module quote, around ordinary text.
_CELLS = st.text(alphabet=st.sampled_from("\",\r\n \t\x00'=;ab\u2028é"), max_size=8) | st.text()


@given(st.lists(st.lists(_CELLS, min_size=1, max_size=6), min_size=1, max_size=5))
def test_a_line_is_exactly_what_the_csv_module_writes(rows):
    written = "".join(csv_file.csv_line(row) + csv_file.LINE_END for row in rows)
    assert written == _written_by_the_csv_module(rows)


def test_a_whole_export_chunk_is_what_the_csv_module_writes():
    pages = [
        CustomerPage(tuple(Customer.from_wire(numbered_wire_customer(n)) for n in range(50)), None)
    ]
    extra = ["region", "notes"]
    [(chunk, count)] = list(csv_file.csv_chunks(pages, extra))
    rows = [csv_file.header(extra)] + [csv_cells(c, extra) for c in pages[0].customers]
    assert count == 50
    assert chunk.decode("utf-8") == csv_file.BOM + _written_by_the_csv_module(rows)


def _reference_row(customer: Customer, extra: list[str]) -> list[str]:
    """A customer's cells written one by one from what the module's docstring promises."""
    n = csv_file.neutralise
    status = customer.billable_status
    fields = customer.custom_fields
    return [
        n(customer.id),
        n(customer.name),
        n(customer.external_id),
        n("; ".join(customer.ingest_aliases)),
        n(customer.salesforce_account_id or ""),
        str(status.value.value) if status else "",
        csv_file.timestamp(status.effective_at) if status else "",
        csv_file.timestamp(customer.created_at),
        csv_file.timestamp(customer.updated_at),
        csv_file.timestamp(customer.archived_at),
        json.dumps(fields, ensure_ascii=False),
        *[n(fields.get(key, "")) for key in extra],
    ]


# Zones from before 1940 have offsets in seconds (Amsterdam's +00:19:32), which msgspec
# would write to the minute; and times in UTC with and without a fraction of a second.
_TIMES = st.datetimes(
    min_value=datetime(1900, 1, 1),
    max_value=datetime(2040, 1, 1),
    timezones=st.timezones() | st.just(timezone(timedelta(seconds=30))) | st.just(UTC),
) | st.sampled_from([datetime(2024, 3, 1, 12, 0, tzinfo=UTC)])
_CUSTOMERS = st.builds(
    Customer,
    id=_CELLS,
    name=_CELLS,
    external_id=_CELLS,
    ingest_aliases=st.lists(_CELLS, max_size=3).map(tuple),
    custom_fields=st.dictionaries(st.sampled_from(["region", "plan", "a,b", '"q"']), _CELLS),
    salesforce_account_id=st.none() | _CELLS,
    created_at=_TIMES,
    updated_at=_TIMES,
    archived_at=st.none() | _TIMES,
    billable_status=st.none()
    | st.builds(
        CurrentBillableStatus,
        value=st.sampled_from(BillableStatus),
        effective_at=st.none() | _TIMES,
    ),
)


@given(
    st.lists(_CUSTOMERS, min_size=1, max_size=8),
    st.lists(st.sampled_from(["region", "a,b", '"q"', "missing"]), max_size=2, unique=True),
    st.lists(st.integers(0, 12), max_size=4, unique=True),
)
def test_a_page_written_a_column_at_a_time_is_what_the_csv_module_writes_row_by_row(
    customers, extra, chosen
):
    positions = [at for at in chosen if at < len(csv_file.COLUMNS) + len(extra)]
    rows = [_reference_row(customer, extra) for customer in customers]
    if positions:
        rows = [[row[at] for at in positions] for row in rows]

    written = csv_file.lines(customers, extra, positions)

    assert written == _written_by_the_csv_module(rows)
    assert [csv_cells(c, extra) for c in customers] == [_reference_row(c, extra) for c in customers]


def _plain_customer(n: int, **fields: object) -> Customer:
    fields = {"custom_fields": {"region": "emea"}, "updated_at": "2024-03-02T12:00:00.5Z", **fields}
    return Customer.from_wire(numbered_wire_customer(n, **fields))


@pytest.mark.parametrize(
    "text", ['say "hi"', "back\\slash", "nul\x00", "unit\x1fsep", "line\nbreak", "tab\t", "é"]
)
@pytest.mark.parametrize("where", ["key", "value"])
def test_one_custom_field_json_escapes_changes_only_its_own_cell(text, where):
    fields = {text: "v"} if where == "key" else {"k": text}
    customers = [_plain_customer(1), _plain_customer(2, custom_fields=fields), _plain_customer(3)]

    assert csv_file.lines(customers) == _written_by_the_csv_module(
        [_reference_row(c, []) for c in customers]
    )


@pytest.mark.parametrize(
    "at",
    [
        "2024-03-01T12:00:00Z",  # no fraction of a second: `.000000` added
        "2024-03-01T12:00:00.5+01:00",
        "1901-01-01T00:00:00.5+00:19:32",  # an offset in seconds, as Amsterdam's was
        "2024-03-01T12:00:00.5+00:00:30",  # which msgspec would write as `Z`
    ],
)
def test_one_time_unlike_the_rest_of_its_column_is_written_in_utc(at):
    customers = [_plain_customer(1), _plain_customer(2, created_at=at), _plain_customer(3)]

    written = csv_file.lines(customers)

    assert written == _written_by_the_csv_module([_reference_row(c, []) for c in customers])
    assert csv_file.timestamp(customers[1].created_at) in written


def test_timestamps_are_utc_with_microseconds_always():
    plus_two = timezone(timedelta(hours=2))
    assert csv_file.timestamp(datetime(2024, 3, 1, 14, 0, tzinfo=plus_two)) == (
        "2024-03-01T12:00:00.000000Z"
    )
    assert csv_file.timestamp(datetime(2024, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)) == (
        "2024-03-01T12:00:00.123000Z"
    )
    assert csv_file.timestamp(None) == ""


def test_chunks_are_one_per_page_and_skip_empty_pages():
    customers = tuple(Customer.from_wire(numbered_wire_customer(n)) for n in range(1, 4))
    pages = [
        CustomerPage(customers[:2], "c1"),
        CustomerPage((), "c2"),
        CustomerPage(customers[2:], None),
    ]

    chunks = list(csv_file.csv_chunks(pages))

    assert [count for _, count in chunks] == [2, 1]
    assert chunks[0][0].startswith(CSV_BOM + b"id,name,")
    assert not chunks[1][0].startswith(CSV_BOM)


@given(st.datetimes(timezones=st.timezones()))
def test_a_timestamp_cell_is_the_utc_isoformat_with_microseconds(at):
    assert csv_file.timestamp(at) == (
        at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    )
