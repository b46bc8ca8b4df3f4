"""The results table as Jinja2 renders it (templates/jinja2/customers/_table.html, included by
the results region): the rows' hooks and values, escaped, and a name it does not get is an
error, never an empty cell."""

from __future__ import annotations

import re
from dataclasses import replace

import jinja2
import pytest
from django.template import engines

from customers import display, urlstate
from customers.metronome import Customer
from customers.sandbox import generate_customers


def customer_table(names: dict) -> str:
    """The table with the names the results region gives it (None for those it lacks)."""
    table = engines["jinja2"].get_template("customers/_table.html")
    return table.render({"sort_links": None, "matched_as": None, **names})


@pytest.fixture
def rows() -> list[display.CustomerRow]:
    return display.customer_rows([Customer.from_wire(c) for c in generate_customers(30)])


def test_every_row_carries_its_customer_id_and_shows_its_values(rows):
    html = customer_table({"rows": rows})
    assert re.findall(r'<tr data-customer-id="([^"]+)">', html) == [row.key for row in rows]
    for row in rows:
        assert row.created in html and row.detail_url in html
    assert "Matched as" not in html and 'class="sort"' not in html


def test_the_sort_links_and_the_matched_as_column_come_when_the_page_has_them(rows):
    links = urlstate.sort_links({"q": "acme"}, None)
    matched = [replace(row, matched_as=f"001Xy{n:013d}") for n, row in enumerate(rows)]
    html = customer_table({"rows": matched, "sort_links": links, "matched_as": {}})
    assert html.count('class="sort"') == 3
    assert links["name"].url.replace("&", "&amp;") in html
    assert html.count("<td data-matched-as=") == len(rows)


def test_values_from_metronome_are_escaped(rows):
    hostile = replace(rows[0], name='<script>alert("x")</script>', note="<b>&</b>")
    html = customer_table({"rows": [hostile]})
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in html


def test_a_name_the_table_does_not_get_is_an_error_not_an_empty_cell(rows):
    table = engines["jinja2"].get_template("customers/_table.html")
    with pytest.raises(jinja2.UndefinedError):
        table.render({"rows": rows, "matched_as": None})  # no sort_links
    with pytest.raises(jinja2.UndefinedError):
        table.render({"rows": [object()], "sort_links": None, "matched_as": None})
