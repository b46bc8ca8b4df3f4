"""The search box and the page state as a person meets them: the sort survives every other
control, an exact ID of an archived customer is shown on the Active view, and name search
still answers from the index when Metronome is down."""

import re

import pytest
from playwright.sync_api import expect

from customers.index.keys import fold
from tests.factories import salesforce_id_of

pytestmark = pytest.mark.e2e


def search_box(page):
    return page.get_by_role("searchbox", name=re.compile("Search by name"))


def test_the_sort_is_kept_by_page_size_search_and_a_refined_query(dashboard):
    page = dashboard.page
    dashboard.log_in("support")
    search_box(page).fill("a")
    dashboard.search()
    dashboard.swap(dashboard.results.get_by_role("link", name="Created", exact=True).click)
    assert dashboard.query()["sort"] == ["created"]
    dashboard.swap(dashboard.results.get_by_role("link", name="Name", exact=True).click)
    assert dashboard.query()["sort"] == ["name"]

    dashboard.swap(lambda: page.get_by_label("Rows per page").select_option("25"))
    assert dashboard.query()["sort"] == ["name"]
    assert dashboard.query()["limit"] == ["25"]

    dashboard.search()
    assert dashboard.query()["sort"] == ["name"]

    search_box(page).fill("an")
    dashboard.swap(lambda: search_box(page).press("Enter"))
    assert dashboard.query()["sort"] == ["name"]
    assert dashboard.query()["q"] == ["an"]
    expect(dashboard.results.locator('th[aria-sort="ascending"]')).to_have_text("Name")
    names = dashboard.results.locator("tbody th a").all_inner_texts()
    assert len(names) > 1
    folded = [fold(name) for name in names]
    assert folded == sorted(folded)


def test_an_exact_id_of_an_archived_customer_is_shown_labelled_on_the_active_view(dashboard, data):
    page = dashboard.page
    dashboard.log_in("support")
    active_ids = {salesforce_id_of(data.by_id[i]) for i in data.active}
    archived = next(
        data.by_id[i]
        for i in data.archived
        if salesforce_id_of(data.by_id[i]) and salesforce_id_of(data.by_id[i]) not in active_ids
    )

    for typed in (salesforce_id_of(archived), archived["id"]):
        search_box(page).fill(typed)
        dashboard.swap(lambda: search_box(page).press("Enter"))

        assert dashboard.row_ids() == [archived["id"]]
        row = dashboard.results.locator("tbody tr").first
        expect(row.locator(".badge-stale")).to_have_text("archived")
        expect(dashboard.results).not_to_contain_text("No active customers match")
    dashboard.screenshot("exact-archived-match")


@pytest.fixture
def failing_sandbox(sandbox):
    yield sandbox
    sandbox.reset()


def test_when_metronome_is_down_name_search_shows_the_index_answer_marked_stale(
    dashboard, data, failing_sandbox
):
    page = dashboard.page
    dashboard.log_in("support")
    customer = next(c for c in data.customers if c.get("archived_at") is None)
    failing_sandbox.inject_faults(fail_every=1, fail_status=503)

    search_box(page).fill(customer["name"])
    dashboard.swap(lambda: search_box(page).press("Enter"))

    assert customer["id"] in dashboard.row_ids()
    stale = dashboard.results.locator("[data-stale]")
    expect(stale).to_contain_text("Possibly stale")
    expect(stale).to_contain_text("Metronome is not answering normally (HTTP 503)")
    expect(dashboard.results.get_by_role("alert")).to_have_count(0)
    dashboard.screenshot("stale-index-answer")

    failing_sandbox.reset()
    dashboard.swap(stale.get_by_role("link", name="Retry").click)
    expect(dashboard.results.locator("[data-stale]")).to_have_count(0)
    assert customer["id"] in dashboard.row_ids()
