"""The customers table as staff use it all day: what fits a laptop's screen, what a phone
shows, and the feedback while a request runs. Its screenshots of both sizes are the README's
(UPDATE_README_SCREENSHOT=1 copies them to docs/)."""

from playwright.sync_api import expect

LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

# Rows whose whole box is inside the viewport, as a person sees them without scrolling.
ROWS_IN_VIEW = """() => Array.from(document.querySelectorAll("#results tbody tr"))
  .filter(row => row.getBoundingClientRect().bottom <= window.innerHeight).length"""


def test_at_1280_the_table_fits_without_scrolling_sideways_and_shows_15_rows(dashboard):
    dashboard.page.set_viewport_size(LAPTOP)
    dashboard.log_in("support")
    page = dashboard.page
    assert page.evaluate("document.documentElement.scrollWidth") <= LAPTOP["width"]
    assert page.evaluate(ROWS_IN_VIEW) >= 15
    # Every column's header is on screen, not cut off at the right.
    for header in page.locator("#results thead th").all():
        box = header.bounding_box()
        assert box and box["x"] + box["width"] <= LAPTOP["width"]
    dashboard.screenshot("laptop-1280", readme="screenshot.png")


# How many lines each element's text takes.
LINES = """elements => elements.map(element => {
    const range = document.createRange();
    range.selectNodeContents(element);
    const rects = Array.from(range.getClientRects()).filter(rect => rect.width > 0);
    return new Set(rects.map(rect => Math.round(rect.top))).size;
})"""


def test_at_1280_no_header_or_archived_date_ends_in_an_ellipsis(dashboard):
    dashboard.page.set_viewport_size(LAPTOP)
    dashboard.log_in("support")
    page = dashboard.page
    # Each header whole on one line, in the active list and the archived one.
    cut = "ths => ths.filter(th => th.scrollWidth > th.clientWidth + 1).map(th => th.textContent)"
    for url in ("/customers/", "/customers/?only_archived=true"):
        page.goto(url)
        headers = dashboard.results.locator("thead th")
        assert set(headers.evaluate_all(LINES)) == {1}, url
        assert headers.evaluate_all(cut) == [], url
    badges = dashboard.results.locator("tbody td .badge-archived")
    expect(badges.first).to_be_visible()
    # Each date's badge ends inside its cell's padding, not under the cell's "…".
    outside = badges.evaluate_all(
        """badges => badges.filter(badge => {
            const cell = badge.closest('td');
            const room = cell.getBoundingClientRect().right
                - parseFloat(getComputedStyle(cell).paddingRight);
            return badge.getBoundingClientRect().right > room + 0.5;
        }).map(badge => badge.textContent)"""
    )
    assert outside == []


def test_the_column_headers_stay_visible_while_scrolling(dashboard):
    dashboard.page.set_viewport_size(LAPTOP)
    dashboard.log_in("support")
    page = dashboard.page
    page.locator("#results tbody tr").nth(40).scroll_into_view_if_needed()
    assert page.evaluate("window.scrollY") > 500
    header = page.locator("#results thead th").first
    box = header.bounding_box()
    assert box and 0 <= box["y"] <= 2, box
    expect(header).to_be_visible()


def test_aliases_show_one_line_and_plus_n_opens_the_rest(dashboard, data):
    dashboard.log_in("support")
    page = dashboard.page
    row_id = next(i for i in data.active[:50] if len(data.by_id[i]["ingest_aliases"]) == 3)
    aliases = data.by_id[row_id]["ingest_aliases"]
    cell = page.locator(f'tr[data-customer-id="{row_id}"] td').nth(1)
    more = cell.locator("summary")
    expect(more).to_have_text("+2 more")
    expect(cell.get_by_text(aliases[1], exact=True)).to_be_hidden()
    more.click()
    expect(cell.get_by_text(aliases[1], exact=True)).to_be_visible()
    expect(cell.get_by_text(aliases[2], exact=True)).to_be_visible()


def test_after_next_the_results_scroll_into_view_and_focus_is_on_the_row_count(dashboard):
    dashboard.page.set_viewport_size(LAPTOP)
    dashboard.log_in("support")
    page = dashboard.page
    dashboard.results.locator("a[rel=next]").scroll_into_view_if_needed()
    dashboard.next()
    count = page.locator("#row-count")
    expect(count).to_be_focused()
    expect(count).to_contain_text("Rows 51–100")
    assert count.bounding_box()["y"] >= 0
    assert page.evaluate("document.getElementById('results').getBoundingClientRect().top") <= 1


def test_a_slow_request_dims_the_results_disables_the_pager_and_says_what_it_waits_for(
    dashboard, sandbox
):
    dashboard.log_in("support")
    page = dashboard.page
    sandbox.inject_faults(latency_s=2.5)
    try:
        page.locator("label.toggle-option", has_text="Archived").click()
        expect(dashboard.results).to_have_class("results htmx-request")
        expect(page.get_by_role("radio", name="Active")).to_be_disabled()
        expect(dashboard.results.locator(".paging a[rel=next]")).to_have_css(
            "pointer-events", "none"
        )
        expect(page.locator("#loading")).to_have_text("Waiting for Metronome…")
        expect(page.locator("#loading")).to_have_css("opacity", "1")
        dashboard.screenshot("loading")
        expect(dashboard.results).to_have_attribute("data-archived", "true", timeout=10_000)
        expect(dashboard.results).not_to_have_class("results htmx-request")
        expect(page.get_by_role("radio", name="Active")).to_be_enabled()
    finally:
        sandbox.reset()


def test_a_slow_whole_page_shows_its_filters_and_a_loading_line_at_once(dashboard, sandbox):
    # The page is sent in two parts (views._streamed_page): before, a reload at 5 s per
    # answer was a blank page for 5 s.
    dashboard.log_in("support")
    page = dashboard.page
    sandbox.inject_faults(latency_s=5)
    try:
        page.goto("/customers/?limit=10", wait_until="commit")
        expect(page.locator("#filters")).to_be_visible()
        loading = page.locator(".initial-loading")
        expect(loading).to_be_visible()
        expect(loading).to_have_text("Loading customers…")
        assert page.locator("#results").count() == 0
        dashboard.screenshot("whole-page-loading")
        rows = dashboard.results.locator("tr[data-customer-id]")
        expect(rows).to_have_count(10, timeout=15_000)
        expect(loading).to_be_hidden()
    finally:
        sandbox.reset()


def test_a_failed_toggle_request_puts_the_toggle_back(dashboard, problems):
    dashboard.log_in("support")
    page = dashboard.page
    # The connection drops: the table still shows active customers, so must the toggle.
    page.route(lambda url: "only_archived=true" in url, lambda route: route.abort())
    page.locator("label.toggle-option", has_text="Archived").click()
    page.wait_for_function(
        "() => !document.getElementById('results').classList.contains('htmx-request')"
    )
    expect(page.get_by_role("radio", name="Active")).to_be_checked()
    expect(dashboard.results).to_have_attribute("data-archived", "false")
    # The dropped connection is logged by chromium and htmx: expected here, and nothing else.
    expected = ("net::ERR_FAILED", "htmx:sendError", "htmx:afterRequest")
    assert problems.console_errors and all(
        any(text in error for text in expected) for error in problems.console_errors
    ), problems.console_errors
    problems.console_errors.clear()


def test_on_a_phone_rows_are_cards_and_the_filters_fold_after_a_search(dashboard, data):
    dashboard.page.set_viewport_size(PHONE)
    dashboard.log_in("support")
    page = dashboard.page
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    first = page.locator("#results tbody tr").first
    expect(first).to_have_css("display", "block")
    expect(page.locator("#results thead")).to_have_css("position", "absolute")
    # The first screen, as a person sees it on opening the page: the first card is on it,
    # the pasted-ID boxes folded above it.
    fold = page.locator("#filters details.filters-fold")
    expect(fold).not_to_have_attribute("open", "")
    card = first.bounding_box()
    assert card and card["y"] + card["height"] / 2 <= PHONE["height"], card
    # A card has room for the whole Metronome ID and first alias (long e-mail-like ones
    # among them): they wrap, never end in "…".
    for whole in ("td:nth-child(2) > a", "td:nth-child(3) > code"):
        cells = page.locator(f"#results tbody {whole}")
        assert cells.count() > 0, whole
        assert (
            cells.evaluate_all(
                "cells => cells.filter(c => c.scrollWidth > c.clientWidth).map(c => c.textContent)"
            )
            == []
        ), whole
    dashboard.screenshot("phone-390", readme="phone.png")

    fold.locator("> summary").click()
    page.get_by_label("Ingest alias").fill(data.by_id[data.active[0]]["ingest_aliases"][0])
    dashboard.search()
    expect(page.locator("#filters details.filters-fold")).not_to_have_attribute("open", "")
    expect(page.get_by_label("Ingest alias")).to_be_hidden()
    # Folded, it still says what it holds (refreshed with the results).
    expect(page.locator("#filters details.filters-fold > summary")).to_contain_text(
        "in use: Ingest alias"
    )
    assert dashboard.row_ids() == [data.active[0]]
