"""customers/csv_file.py: the file's columns, each customer's cells from a `Customer` or
straight from the JSON, formula cells neutralised as OWASP says, and the file as chunks."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customers import csv_file
from customers.metronome import (
    Customer,
    CustomerPage,
    MalformedResponse,
    RowPage,
)
from tests.factories import CSV_BOM, numbered_wire_customer, parse_csv

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

    row = csv_file.customer_row(customer, ["notes", "missing"])

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


# Customers as Metronome might send them: well-formed ones with timestamps in every spelling
# Python reads (the usual `...Z` with 0-7 fraction digits, offsets), and half of them broken
# in one field: a wrong type, a missing key, a timestamp without a time zone or impossible.
_timestamps = (
    st.datetimes(timezones=st.just(UTC)).map(lambda at: at.isoformat().replace("+00:00", "Z"))
    | st.builds(
        lambda at, digits: (
            at.strftime("%Y-%m-%dT%H:%M:%S") + ("." + digits if digits else "") + "Z"
        ),
        st.datetimes(min_value=datetime(1000, 1, 1)),
        st.text("0123456789", max_size=7),
    )
    | st.datetimes(timezones=st.timezones()).map(datetime.isoformat)
)


_statuses = st.none() | st.fixed_dictionaries(
    {"value": st.sampled_from(["billable", "unbillable"])},
    optional={"effective_at": st.none() | _timestamps},
)


_well_formed = st.fixed_dictionaries(
    {
        "id": st.text(),
        "name": st.text(),
        "external_id": st.text(),
        "ingest_aliases": st.lists(st.text(), max_size=3),
        "custom_fields": st.dictionaries(st.text(max_size=8), st.text(), max_size=3),
        "customer_config": st.fixed_dictionaries({"salesforce_account_id": st.none() | st.text()}),
        "created_at": _timestamps,
        "updated_at": _timestamps,
    },
    optional={"archived_at": st.none() | _timestamps, "current_billable_status": _statuses},
)


_odd = (
    st.none()
    | st.integers()
    | st.booleans()
    | st.lists(st.integers() | st.text(), min_size=1, max_size=2)
    | st.dictionaries(st.text(max_size=8), st.integers() | st.text(), max_size=2)
    | st.text(max_size=5)
    | st.datetimes().map(datetime.isoformat)  # no time zone
    | st.sampled_from(["2024-01-01T24:00:00Z", "2024-02-30T00:00:00Z", "2024-01-01 00:00:00Z"])
    | st.fixed_dictionaries({"value": st.sampled_from(["BILLABLE", "", "paused"])})
    | st.just("missing")
)


def _broken(customer: dict, field: str, value: object) -> object:
    if field == "whole":
        return value
    broken = dict(customer)
    if value == "missing":
        broken.pop(field, None)
    else:
        broken[field] = value
    return broken


_wire_customers = _well_formed | st.builds(
    _broken,
    _well_formed,
    st.sampled_from(
        [
            "id",
            "name",
            "external_id",
            "ingest_aliases",
            "custom_fields",
            "customer_config",
            "created_at",
            "updated_at",
            "archived_at",
            "current_billable_status",
            "whole",
        ]
    ),
    _odd,
)


@given(_wire_customers, st.lists(st.sampled_from(["plan", "region", "", "x"]), max_size=3))
def test_a_row_read_straight_from_the_wire_is_the_row_of_the_customer_read_from_it(
    data, extra_columns
):
    try:
        expected = csv_file.customer_row(Customer.from_wire(data), extra_columns)
    except MalformedResponse as error:
        with pytest.raises(MalformedResponse) as raised:
            csv_file.wire_row(data, extra_columns)
        assert str(raised.value) == str(error)
    else:
        assert csv_file.wire_row(data, extra_columns) == expected


def test_the_usual_utc_spelling_keeps_its_digits_and_pads_them_to_microseconds():
    assert csv_file.wire_timestamp("2024-03-01T12:00:00.5Z") == "2024-03-01T12:00:00.500000Z"
    assert csv_file.wire_timestamp("2024-03-01T12:00:00Z") == "2024-03-01T12:00:00.000000Z"
    assert csv_file.wire_timestamp("2024-03-01T14:00:00+02:00") == "2024-03-01T12:00:00.000000Z"
    with pytest.raises(ValueError, match="time zone"):
        csv_file.wire_timestamp("2024-03-01T12:00:00")


def test_pages_of_rows_already_in_cells_are_written_as_they_are():
    rows = tuple(csv_file.wire_row(numbered_wire_customer(n)) for n in range(1, 3))

    chunks = list(csv_file.csv_chunks([RowPage(rows, "c1"), RowPage((), None)]))

    assert [count for _, count in chunks] == [2]
    assert parse_csv(chunks[0][0])[1:] == [list(row) for row in rows]


@given(st.dictionaries(st.text(), st.text()))
def test_the_custom_fields_json_is_exactly_what_json_dumps_writes(fields):
    assert csv_file.json_object(fields) == json.dumps(fields, ensure_ascii=False)


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
