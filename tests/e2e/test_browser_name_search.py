"""Name search in a real browser: part of a name typed in the search box finds the customer
(from the index the fixture synced from the sandbox), and its name opens the customer."""

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from customers.index.keys import fold

pytestmark = pytest.mark.e2e


def test_part_of_a_name_finds_the_customer_and_opens_it(dashboard, data):
    page = dashboard.page
    dashboard.log_in("support")
    expect(page.locator("#index-status")).to_contain_text(
        re.compile(r"Index updated (just now|.* ago)")
    )
    customer = next(c for c in data.customers if c.get("archived_at") is None)
    # The end of its first word and all of its last, lower case: partial words, any case.
    words = customer["name"].split()
    typed = f"{words[0][1:].lower()} {words[-1].lower()}" if len(words) > 1 else words[0][1:]

    box = page.get_by_role("searchbox", name=re.compile("Search by name"))
    box.fill(typed)
    dashboard.swap(lambda: box.press("Enter"))

    assert dashboard.query()["q"] == [typed]
    row = dashboard.results.locator(f'tr[data-customer-id="{customer["id"]}"]')
    expect(row).to_be_visible()
    expect(dashboard.results.locator("#row-count")).to_contain_text(
        re.compile(r"Rows 1–\d+ of [\d,]+")
    )
    dashboard.screenshot("name-search")

    row.get_by_role("link", name=customer["name"], exact=True).click()
    panel = page.locator("aside#customer-panel")
    expect(panel).to_be_visible()
    expect(panel.get_by_role("heading", level=1)).to_have_text(customer["name"])
    assert urlsplit(page.url).path == f"/customers/{customer['id']}/"


def test_a_sortable_header_sorts_the_search_by_name(dashboard):
    page = dashboard.page
    dashboard.log_in("support")
    page.get_by_role("searchbox", name=re.compile("Search by name")).fill("a")
    dashboard.search()

    dashboard.swap(dashboard.results.get_by_role("link", name="Name", exact=True).click)

    assert dashboard.query()["sort"] == ["name"]
    header = dashboard.results.locator('th[aria-sort="ascending"]')
    expect(header).to_have_text("Name")
    names = dashboard.results.locator("tbody th a").all_inner_texts()
    assert len(names) > 1
    assert names == sorted(names, key=fold)  # the index sorts by the folded name
