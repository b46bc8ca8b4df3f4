"""customers/metronome/decode.py: a page of customers read in C is the page the checked
readers (`parse_json`, then `Customer.from_wire`) read from the same bytes, or is declined
and left to them; and what Metronome (the sandbox) sends is read in C."""

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customers.metronome import Customer, CustomerPage, MalformedResponse, decode
from customers.metronome.wire import parse_json
from customers.sandbox import SandboxAPI
from tests.factories import SANDBOX_AUTH, numbered_wire_customer

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


def _page(customers: list[object], cursor: object = None, *, ascii_only: bool = True) -> bytes:
    return json.dumps({"data": customers, "next_page": cursor}, ensure_ascii=ascii_only).encode()


def _checked(content: bytes) -> CustomerPage:
    body = parse_json(content)
    assert isinstance(body, dict)
    return CustomerPage(tuple(Customer.from_wire(item) for item in body["data"]), body["next_page"])


@given(
    st.lists(_wire_customers, max_size=3),
    st.none() | st.text(max_size=5),
    st.booleans(),
)
def test_a_page_read_in_c_is_the_page_the_checked_readers_read_or_is_declined(
    customers, cursor, ascii_only
):
    content = _page(customers, cursor, ascii_only=ascii_only)
    fast = decode.customer_page(content)
    try:
        checked = _checked(content)
    except MalformedResponse:
        assert fast is None  # what the checked readers refuse is never read in C
        return
    if fast is not None:
        assert fast == CustomerPage(checked.customers, checked.next_page or None)


def test_what_metronome_usually_sends_is_read_in_c():
    # The sandbox follows metronome-api.md: names in every script, aliases, custom fields,
    # archived and unbillable customers, Salesforce IDs and none.
    api = SandboxAPI(300)
    for archived in ("false", "true"):
        _, _, body = api.handle(
            "GET", "/v1/customers", f"limit=100&only_archived={archived}", SANDBOX_AUTH
        )
        page = decode.customer_page(body)
        assert page is not None
        assert page == _checked(body)


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"name": "Zo\udce9"}, "a lone surrogate, which parse_json replaces"),
        ({"created_at": "0001-01-01T00:30:00+01:00"}, "a time before the calendar in UTC"),
        ({"updated_at": "9999-12-31T23:30:00-01:00"}, "a time after the calendar in UTC"),
        ({"custom_fields": {"n": 1}}, "a custom field that is not text"),
        ({"created_at": "2024-03-01T12:00:00"}, "a timestamp without a time zone"),
        ({"current_billable_status": {"value": "paused"}}, "an unknown billable status"),
        ({"current_billable_status": {}}, "an empty status, which from_wire reads as none"),
        ({"customer_config": {}}, "no salesforce_account_id key"),
        ({"created_at": "2024-03-01T12:00:00.1234567Z"}, "a fraction past microseconds"),
        ({"name": "v2.1234567"}, "seven digits after a point anywhere"),
    ],
)
def test_pages_the_checked_readers_must_read_are_declined(changes, why):
    content = _page([numbered_wire_customer(1, **changes)])

    assert decode.customer_page(content) is None, why


@pytest.mark.parametrize(
    "name",
    [b"Zo\xed\xa0\x80", b"Zo\\udc00\\ud800", b"Zo\\ud800\\u0041", b"Zo\xff", b"Zo\xc0\xaf"],
)
def test_lone_surrogates_and_broken_utf8_in_the_bytes_are_declined(name):
    content = _page([numbered_wire_customer(1, name="NAME")]).replace(b"NAME", name)

    assert decode.customer_page(content) is None


@pytest.mark.parametrize("broken", [b"\xff", b"\xc0\xaf", b"\xf4\x90\x80\x80"])
def test_broken_utf8_in_a_field_nobody_reads_is_declined_as_json_loads_refuses_it(broken):
    # msgspec checks the UTF-8 of the strings it keeps and skips the rest unread.
    customer = numbered_wire_customer(1, name="Zoë")
    content = _page([{**customer, "notes": "BROKEN"}], ascii_only=False).replace(b"BROKEN", broken)
    with pytest.raises(MalformedResponse):
        parse_json(content)

    assert decode.customer_page(content) is None
    assert decode.listed_page(content) is None
    span = json.dumps({**customer, "notes": "BROKEN"}).encode().replace(b"BROKEN", broken)
    with pytest.raises(MalformedResponse):
        decode.customer(span)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_json_in_another_encoding_than_utf8_is_declined(encoding):
    # json.loads would read it, past the check for the API token, which reads UTF-8 bytes.
    content = json.dumps({"data": [numbered_wire_customer(1)], "next_page": None})
    with pytest.raises(MalformedResponse):
        parse_json(content.encode(encoding))
    assert parse_json(b"\xef\xbb\xbf" + content.encode())["next_page"] is None  # UTF-8's BOM


def test_a_fraction_past_microseconds_is_cut_as_the_checked_readers_cut_it():
    # msgspec would round this one into the next year.
    content = _page([numbered_wire_customer(1, created_at="2023-12-31T23:59:59.9999996Z")])

    assert decode.customer_page(content) is None
    (customer,) = _checked(content).customers
    assert customer.created_at == datetime(2023, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    span = json.dumps(numbered_wire_customer(1, created_at="2023-12-31T23:59:59.9999996Z"))
    assert decode.customer(span.encode()).created_at == customer.created_at


def test_an_astral_character_escaped_as_a_surrogate_pair_is_read_in_c():
    content = _page([numbered_wire_customer(1, name="\U0001f600 Ltd.")], ascii_only=True)
    assert b"\\ud83d\\ude00" in content

    page = decode.customer_page(content)

    assert page is not None
    assert page.customers[0].name == "\U0001f600 Ltd."
    assert page == _checked(content)


def test_a_page_nested_past_any_reader_is_declined_not_a_crash():
    content = b'{"data": [], "next_page": null, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"

    assert decode.customer_page(content) is None
    with pytest.raises(MalformedResponse, match="nested too deeply"):
        parse_json(content)


def test_a_lowercase_t_or_z_is_read_alike_by_both_readers():
    # RFC 3339 (5.6) allows them; datetime.fromisoformat (3.11) refuses the z, so
    # `read_datetime` upper-cases it.
    content = _page([numbered_wire_customer(1, created_at="2024-03-01t12:00:00.5z")])

    page = decode.customer_page(content)

    assert page is not None
    assert page.customers[0].created_at == datetime(2024, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)
    assert page == _checked(content)


def test_an_empty_salesforce_id_is_none_as_from_wire_reads_it():
    content = _page([numbered_wire_customer(1, customer_config={"salesforce_account_id": ""})])

    page = decode.customer_page(content)

    assert page is not None
    assert page.customers[0].salesforce_account_id is None
    assert page == _checked(content)


# --- The index sync's reading: ids and spans, then a changed customer in full ------------


@given(_wire_customers, st.booleans())
def test_a_customer_read_from_its_span_is_the_customer_from_wire_reads(data, ascii_only):
    span = json.dumps(data, ensure_ascii=ascii_only).encode()
    try:
        checked = Customer.from_wire(parse_json(span))
    except MalformedResponse as error:
        with pytest.raises(MalformedResponse) as raised:
            decode.customer(span)
        assert str(raised.value) == str(error)
    else:
        assert decode.customer(span) == checked


def test_a_listed_page_is_each_customers_id_and_its_bytes_as_sent():
    api = SandboxAPI(300)
    _, _, body = api.handle("GET", "/v1/customers", "limit=100&only_archived=false", SANDBOX_AUTH)

    page = decode.listed_page(body)

    assert page is not None
    sent = json.loads(body)
    assert page.ids == [customer["id"] for customer in sent["data"]]
    assert [json.loads(span) for span in page.spans] == sent["data"]
    assert all(span in body for span in page.spans)  # cut out, not written again
    assert page.next_page == sent["next_page"]


@pytest.mark.parametrize("item", [{"name": "no id"}, {"id": 7}, "a string", None, ["id"]], ids=repr)
def test_a_listed_item_without_a_string_id_is_declined_then_refused(item):
    content = _page([numbered_wire_customer(1), item])

    assert decode.listed_page(content) is None
    body = parse_json(content)
    with pytest.raises(MalformedResponse, match="could not read"):
        decode.listed_items(body["data"], None)


def test_a_lone_surrogate_in_a_listed_customer_is_replaced_when_it_is_read():
    content = _page([numbered_wire_customer(1, name="NAME")]).replace(b"NAME", b"Zo\\ud800")

    page = decode.listed_page(content) or decode.listed_items(parse_json(content)["data"], None)

    assert decode.customer(page.spans[0]).name == "Zo\ufffd"


def test_items_read_the_checked_way_get_the_same_span_every_time():
    items = parse_json(_page([numbered_wire_customer(1, name="Zo\udce9")]))["data"]

    once, again = decode.listed_items(items, "c"), decode.listed_items(list(items), "c")

    assert once.spans == again.spans
    assert decode.customer(once.spans[0]).name == "Zo\ufffd"
