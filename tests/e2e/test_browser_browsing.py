"""Browsing the customers page in a real browser: the first page and its badges, the
Active/Archived toggle with Back and Forward, paging with reloads, and the page size."""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

PAGE_SIZE = 50  # the dashboard's default
EN_DASH = "\u2013"  # between the numbers of "Rows 1-50"

# The billable-status badge of each row (the first badge in it), as a person sees it.
BADGES = """rows => rows.map(row => {
  const badge = row.querySelector(".badge");
  return {
    text: badge.textContent.trim(),
    visible: badge.checkVisibility(),
    background: getComputedStyle(badge).backgroundColor,
  };
})"""


def expected_badge(customer: dict) -> str:
    status = customer.get("current_billable_status")
    return status["value"].capitalize() if status else "Not set"


def test_logging_in_shows_the_first_page_of_active_customers_with_badges(dashboard, data):
    dashboard.log_in("demo")
    page = dashboard.page

    expect(page.locator(".sandbox-banner")).to_be_visible()
    assert dashboard.row_ids() == data.active[:PAGE_SIZE]
    expect(dashboard.results.locator(".count")).to_contain_text(f"Rows 1{EN_DASH}{PAGE_SIZE}")
    expect(dashboard.results.locator("a[rel=next]")).to_be_visible()

    badges = dashboard.results.locator("tbody tr").evaluate_all(BADGES)
    assert [b["text"] for b in badges] == [
        expected_badge(data.by_id[customer_id]) for customer_id in data.active[:PAGE_SIZE]
    ]
    assert all(b["visible"] for b in badges)
    # The stylesheet gives each status its own colour; a transparent badge means no CSS.
    colours = {b["text"]: b["background"] for b in badges}
    assert "rgba(0, 0, 0, 0)" not in colours.values()
    assert len(set(colours.values())) == len(colours) == 3, colours

    dashboard.screenshot("01-first-page")


def test_the_archived_toggle_changes_the_url_and_back_restores_the_active_page(dashboard, data):
    dashboard.log_in("support")
    page = dashboard.page

    dashboard.show("Archived")
    assert dashboard.query()["only_archived"] == ["true"]
    expect(page.get_by_role("radio", name="Archived")).to_be_checked()
    assert dashboard.row_ids() == data.archived[:PAGE_SIZE]
    archived_badges = dashboard.results.locator("tbody tr .badge-archived")
    expect(archived_badges).to_have_count(PAGE_SIZE)
    expect(archived_badges.first).to_be_visible()
    dashboard.screenshot("03-archived")

    # htmx keeps no history cache, so Back asks the server again: it must get the whole page.
    dashboard.swap(page.go_back)
    assert urlsplit(page.url).path == "/customers/"
    assert dashboard.query() == {}
    expect(page.get_by_role("banner")).to_be_visible()
    expect(page.locator("#filters")).to_be_visible()
    expect(page.locator("#results")).to_have_count(1)
    expect(page.get_by_role("radio", name="Active")).to_be_checked()
    assert dashboard.row_ids() == data.active[:PAGE_SIZE]

    dashboard.swap(page.go_forward)
    assert dashboard.query()["only_archived"] == ["true"]
    expect(page.locator("#results")).to_have_count(1)
    assert dashboard.row_ids() == data.archived[:PAGE_SIZE]


def test_next_previous_reload_and_first_each_show_the_right_rows(dashboard, data):
    def rows_of_page(number: int) -> list[str]:
        return data.active[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]

    def assert_on_page(number: int) -> None:
        assert dashboard.page_label() == f"Page {number}"
        assert dashboard.row_ids() == rows_of_page(number)
        first_row = (number - 1) * PAGE_SIZE + 1
        expect(dashboard.results.locator(".count")).to_contain_text(
            f"Rows {first_row}{EN_DASH}{first_row + PAGE_SIZE - 1}"
        )

    dashboard.log_in("support")
    assert_on_page(1)
    for expected_page in (2, 3, 4):
        dashboard.next()
        assert_on_page(expected_page)
    dashboard.previous()
    assert_on_page(3)

    # A reload (or a pasted link) is a plain page load; Previous still works from it.
    dashboard.page.reload()
    expect(dashboard.page.locator("#results")).to_have_count(1)
    assert_on_page(3)
    dashboard.previous()
    assert_on_page(2)
    dashboard.first()
    assert_on_page(1)
    assert "next_page" not in dashboard.query()


def test_a_page_link_edited_by_hand_shows_its_rows_unnumbered(dashboard, data):
    # A made-up `prev` cursor in page 3's link would have made its rows 151-200.
    dashboard.log_in("support")
    dashboard.next()
    dashboard.next()
    edited = dashboard.page.url.replace("prev=", "prev=made-up&prev=", 1)
    dashboard.page.goto(edited)
    count = dashboard.results.locator(".count")
    expect(count).to_contain_text(f"{PAGE_SIZE} rows")
    expect(count).to_contain_text("page number unknown")
    expect(count).not_to_contain_text("Rows ")
    assert dashboard.row_ids() == data.active[2 * PAGE_SIZE : 3 * PAGE_SIZE]
    dashboard.screenshot("edited-page-link")
    dashboard.page.set_viewport_size({"width": 390, "height": 844})
    dashboard.screenshot("edited-page-link-phone")
    dashboard.first()
    expect(count).to_contain_text(f"Rows 1{EN_DASH}{PAGE_SIZE}")


def test_changing_the_page_size_changes_the_row_count(dashboard, data):
    dashboard.log_in("support")
    rows_per_page = dashboard.page.get_by_label("Rows per page")

    for size in (25, 100):
        dashboard.swap(lambda size=size: rows_per_page.select_option(str(size)))
        assert dashboard.query()["limit"] == [str(size)]
        assert dashboard.row_ids() == data.active[:size]

    dashboard.next()
    assert dashboard.row_ids() == data.active[100:200]

    # A new page size starts the list again from its first page.
    dashboard.swap(lambda: rows_per_page.select_option("10"))
    assert dashboard.row_ids() == data.active[:10]
    assert dashboard.page_label() == "Page 1"
