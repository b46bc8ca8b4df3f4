"""The column registry: parsing `columns=`, the table's cells, the CSV's projection and the
phone cards' labels, hostile custom-field keys included."""

import csv
import io
import re

from hypothesis import given
from hypothesis import strategies as st

from customers import columns, csv_file
from customers.metronome import Customer, CustomerPage
from tests.factories import csv_cells
from tests.factories import numbered_wire_customer as wire

HOSTILE_KEY = '"};</style><script>alert(1)</script>\\'


def test_a_choice_keeps_its_order_and_drops_unknown_and_repeated_keys():
    choice = columns.parse(
        "name, id,,billable,nonsense,id,cf.region", known_custom_fields=["region"]
    )

    assert choice.param == "name,id,billable,cf.region"
    assert choice.dropped == ("nonsense", "id")


def test_custom_field_columns_are_limited_to_keys_the_index_knows():
    choice = columns.parse("name,cf.region,cf.gone", known_custom_fields=["region"])
    assert choice.param == "name,cf.region"
    assert choice.dropped == ("cf.gone",)


def test_control_characters_and_absurd_lengths_are_no_custom_field_key():
    choice = columns.parse(f"cf.a\x00b,cf.{'k' * 300},cf.", known_custom_fields=None)
    assert not choice.chosen and len(choice.dropped) == 3


def test_no_choice_is_the_standard_table_and_file():
    assert columns.parse("") == columns.NO_CHOICE
    assert columns.parse(None).csv_columns() == ()


def test_at_most_thirty_columns():
    keys = ",".join(f"cf.k{n}" for n in range(40))
    assert len(columns.parse(keys).columns) == columns.MAX_COLUMNS


def test_the_csv_adds_the_metronome_id_to_join_back_when_the_choice_lacks_it():
    assert [c.key for c in columns.parse("name,billable").csv_columns()] == [
        "id",
        "name",
        "billable",
    ]
    assert [c.key for c in columns.parse("name,id").csv_columns()] == ["name", "id"]


def customer(**fields) -> Customer:
    return Customer.from_wire(wire(7, **fields))


def test_a_chosen_row_escapes_every_value_and_links_the_first_cell_to_the_customer():
    row = columns.rows(
        [customer(name="<b>bold</b>", custom_fields={"region": "<img src=x>"})],
        columns.parse("name,cf.region,id"),
    )[0]

    url = "/customers/00000000-0000-0000-0000-000000000007/"
    assert row.html.startswith(f'<th><a href="{url}">')
    assert "&lt;b&gt;bold&lt;/b&gt;" in row.html and "<b>" not in row.html
    assert "<td>&lt;img src=x&gt;</td>" in row.html
    assert row.html.count("<td>") == 2


def test_a_chosen_row_shows_the_badge_and_dates_as_the_standard_table_does():
    row = columns.rows(
        [
            customer(
                current_billable_status={
                    "value": "billable",
                    "effective_at": "2024-01-02T00:00:00Z",
                },
                archived_at="2024-05-06T00:00:00Z",
            )
        ],
        columns.parse("id,billable,billable_since,created,archived"),
    )[0]
    assert '<span class="badge badge-billable">Billable</span>' in row.html
    assert "<td>2 Jan 2024</td><td>1 Mar 2024</td><td>6 May 2024</td>" in row.html


def test_a_chosen_aliases_cell_shows_the_first_and_opens_the_others_as_the_standard_table():
    many = [f"alias-<{n}>" for n in range(30)]
    aliases = columns.BY_KEY["aliases"]
    first, others = aliases.html(customer(ingest_aliases=many)).split(" <details>")
    assert first == "<code>alias-&lt;0&gt;</code>"
    assert others.startswith('<summary>+29<span class="visually-hidden"> more</span></summary>')
    assert others.count("<code>") == 20  # at most MAX_SHOWN_ALIASES behind "+N"
    assert aliases.html(customer(ingest_aliases=["one"])) == "<code>one</code>"
    assert aliases.html(customer(ingest_aliases=[])) == ""
    assert aliases.html(customer(ingest_aliases=["", "b"])) == ""  # as the standard cell


def test_aliases_heading_a_row_open_their_others_outside_its_link():
    (row,) = columns.rows(
        [customer(ingest_aliases=["a-1", "b-2", "c-3"])], columns.parse("aliases,name")
    )
    link, after_link = row.html.split("</a>", 1)
    assert link.endswith("<code>a-1</code>") and "<details>" not in link
    assert after_link.startswith(" <details><summary>+2")


@given(
    st.lists(
        st.sampled_from([c.key for c in columns.STANDARD] + ["cf.region", "cf.tier"]),
        min_size=1,
        max_size=14,
        unique=True,
    )
)
def test_the_csv_header_and_cells_are_the_chosen_columns_of_the_full_row(keys):
    choice = columns.parse(",".join(keys))
    data = wire(3, custom_fields={"region": "emea", "tier": "gold"})
    extra = choice.custom_field_keys
    full_header = csv_file.header(extra)
    customer = Customer.from_wire(data)
    full_row = csv_cells(customer, extra)

    chunk, count = next(
        csv_file.csv_chunks([CustomerPage((customer,), None)], extra, columns.csv_positions(choice))
    )
    head, row = list(csv.reader(io.StringIO(chunk.decode()[1:], newline="")))

    assert head == [c.csv_header for c in choice.csv_columns()]
    assert count == 1
    assert row == [full_row[full_header.index(name)] for name in head]


def test_the_phone_labels_follow_the_chosen_order_and_cannot_break_out_of_css():
    css = columns.card_labels_css(columns.parse(f"id,name,cf.{HOSTILE_KEY}"))

    assert 'td:nth-child(2)::before { content: "Name"; }' in css
    label = re.search(r"td:nth-child\(3\)::before \{ content: (\"[^\"]*\"); \}", css)
    assert label is not None
    assert "<" not in css and "}" not in label[1] and "\\" + "00003c" in label[1]
    # The last label is for the Matched as column a pasted-ID search adds.
    assert 'td:nth-child(4)::before { content: "Matched as"; }' in css
    assert css.count("{") == css.count("}") == 4
