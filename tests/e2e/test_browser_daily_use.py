"""What a day of use tripped on (issue 23, part 2), in a real browser at 1280 x 800 and
390 x 844: the place in the list kept after looking at a customer, the rows above the fold,
sorting on a phone, and the keyboard (focus kept on the toggle and a sort after the swap, the
pager in reach, the panel keeping focus)."""

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# A word in about a tenth of the sandbox's names: several pages of an index search.
WORD = "Labs"

FOCUSED = """() => {
  const el = document.activeElement;
  return el ? el.outerHTML.slice(0, 120) : "";
}"""


def open_row(dashboard, index: int):
    """Scroll the list so that row `index` sits mid-screen, open its customer; returns the
    row's name link and the scroll position it was opened at."""
    page = dashboard.page
    row = dashboard.results.locator("[data-customer-id]").nth(index)
    link = row.locator("th a")
    link.evaluate("el => el.scrollIntoView({block: 'center'})")
    scroll = page.evaluate("window.scrollY")
    assert scroll > 300
    link.click()
    expect(page.locator("aside#customer-panel")).to_be_focused()
    return link, scroll


def close_by(page, how: str) -> None:
    if how == "Close":
        page.get_by_role("link", name=re.compile("^Close")).click()
    elif how == "Escape":
        page.keyboard.press("Escape")
    else:
        page.go_back()


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
@pytest.mark.parametrize("how", ["Close", "Escape", "Back"])
def test_closing_the_panel_returns_to_the_row_that_was_opened(dashboard, viewport, how):
    page = dashboard.page
    page.set_viewport_size(viewport)
    dashboard.log_in("support")
    link, scroll = open_row(dashboard, 20)

    close_by(page, how)

    expect(page.locator("aside#customer-panel")).to_have_count(0)
    assert urlsplit(page.url).path == "/customers/"
    expect(link).to_be_focused()
    assert page.evaluate("window.scrollY") == scroll


def test_the_panel_keeps_focus_inside_it_while_open(dashboard):
    page = dashboard.page
    page.set_viewport_size(LAPTOP)
    dashboard.log_in("support")
    open_row(dashboard, 20)
    panel = page.locator("aside#customer-panel")
    inside = "() => document.getElementById('customer-panel').contains(document.activeElement)"
    for key in ["Tab"] * 40 + ["Shift+Tab"] * 40:
        page.keyboard.press(key)
        assert page.evaluate(inside), f"{key} left the panel for {page.evaluate(FOCUSED)}"
    expect(panel).to_be_visible()


def test_at_1280_by_800_fifteen_rows_show_above_the_fold(dashboard):
    page = dashboard.page
    page.set_viewport_size(LAPTOP)
    dashboard.log_in("support")
    shown = page.evaluate(
        """() => Array.from(document.querySelectorAll("#results [data-customer-id]"))
          .filter(row => row.getBoundingClientRect().bottom <= window.innerHeight).length"""
    )
    assert shown >= 15


def test_on_a_phone_the_first_result_is_on_the_first_screen(dashboard):
    page = dashboard.page
    page.set_viewport_size(PHONE)
    dashboard.log_in("support")
    first = dashboard.results.locator("[data-customer-id]").first
    box = first.bounding_box()
    assert box and box["y"] + 40 <= PHONE["height"], box


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_a_shared_link_with_a_search_opens_with_the_filters_folded(dashboard, viewport):
    page = dashboard.page
    page.set_viewport_size(viewport)
    dashboard.log_in("support")
    page.goto(f"/customers/?q={WORD}")
    expect(page.locator("#filters details.filters-fold")).not_to_have_attribute("open", "")
    expect(page.get_by_label("Salesforce account IDs")).to_be_hidden()
    expect(dashboard.results.locator("[data-customer-id]").first).to_be_in_viewport()


def names(dashboard) -> list[str]:
    return dashboard.results.locator("[data-customer-id] th a").all_inner_texts()


def test_on_a_phone_the_cards_have_a_sort_control(dashboard):
    page = dashboard.page
    page.set_viewport_size(PHONE)
    dashboard.log_in("support")
    page.goto(f"/customers/?q={WORD}")
    sort = dashboard.results.locator(".card-sort")
    expect(sort).to_be_visible()

    dashboard.swap(sort.get_by_role("link", name="Name").click)
    assert dashboard.query()["sort"] == ["name"]
    shown = names(dashboard)
    assert shown == sorted(shown, key=str.casefold)
    expect(sort.get_by_role("link", name="Name, sorted ascending")).to_be_visible()

    dashboard.swap(sort.get_by_role("link", name="Name, sorted ascending").click)
    assert dashboard.query()["sort"] == ["-name"]
    shown = names(dashboard)
    assert shown == sorted(shown, key=str.casefold, reverse=True)
    dashboard.screenshot("phone-390-sorted")


def test_arrow_keys_on_the_toggle_keep_focus_on_it_after_the_swap(dashboard, data):
    page = dashboard.page
    page.set_viewport_size(LAPTOP)
    dashboard.log_in("support")
    page.get_by_role("radio", name="Active").focus()

    dashboard.swap(lambda: page.keyboard.press("ArrowRight"))

    assert dashboard.row_ids() == data.archived[:50]
    expect(page.get_by_role("radio", name="Archived")).to_be_focused()
    dashboard.swap(lambda: page.keyboard.press("ArrowLeft"))
    assert dashboard.row_ids() == data.active[:50]
    expect(page.get_by_role("radio", name="Active")).to_be_focused()


def test_a_header_sort_keeps_focus_on_its_header_after_the_swap(dashboard):
    page = dashboard.page
    page.set_viewport_size(LAPTOP)
    dashboard.log_in("support")
    page.goto(f"/customers/?q={WORD}")
    dashboard.results.locator("thead a.sort", has_text="Created").focus()

    dashboard.swap(lambda: page.keyboard.press("Enter"))

    assert dashboard.query()["sort"] == ["created"]
    header = dashboard.results.locator("thead th", has_text="Created")
    expect(header).to_have_attribute("aria-sort", "ascending")
    expect(header.locator("a.sort")).to_be_focused()


@pytest.mark.parametrize("url", ["/customers/", f"/customers/?q={WORD}"], ids=["api", "index"])
def test_the_pager_is_a_few_keys_from_the_search_box(dashboard, url):
    """Not 189 Tabs through every row's links: "Go to pages" at the top of the results
    moves focus to the pager (the one with rel=next and rel=prev)."""
    page = dashboard.page
    page.set_viewport_size(LAPTOP)
    dashboard.log_in("support")
    page.goto(url)
    page.get_by_role("searchbox").focus()
    presses = 0
    while presses < 25:
        focused = page.evaluate(
            "document.activeElement.getAttribute('rel') || document.activeElement.textContent"
        )
        if focused == "next":
            break
        key = "Enter" if focused == "Go to pages" else "Tab"
        page.keyboard.press(key)
        presses += 1
    assert presses < 25, "the Next link is more than 25 key presses from the search box"
    dashboard.next()
    expect(page.locator("#row-count")).to_be_focused()


def test_at_1280_names_show_whole_and_a_cut_id_shows_whole_when_pointed_at(dashboard, data):
    page = dashboard.page
    page.set_viewport_size(LAPTOP)
    dashboard.log_in("support")
    cut_names = dashboard.results.locator("[data-customer-id] th").evaluate_all(
        "cells => cells.filter(cell => cell.scrollWidth > cell.clientWidth)"
        ".map(cell => cell.textContent)"
    )
    assert cut_names == []
    first = data.active[0]
    id_link = dashboard.results.locator(f'[data-customer-id="{first}"] td').first.locator("a")
    assert id_link.evaluate("el => el.scrollWidth > el.clientWidth"), "the ID is no longer cut"
    id_link.hover()
    expect(id_link).to_have_attribute("title", first)
