"""customers/urlstate.py: the page's state as a URL and back, and the paging links built
from it, through the real page on the sandbox."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection

from customers import listing, urlstate
from customers.metronome import CustomerQuery
from customers.sandbox import SandboxAPI

pytestmark = pytest.mark.django_db

ROW = re.compile(r'<tr data-customer-id="([0-9a-f-]{36})"')
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


# The per-person limit's slot (customers/concurrency.py) is a row that a pasted-ID search
# takes and gives back: the one write a GET may make, bounded and gone when the work is.
WORK_SLOTS = '"customers_workslot"'


@contextmanager
def no_database_writes() -> Iterator[None]:
    """Fails any SQL write while the page is built and rendered (a work slot apart)."""

    def refuse_writes(execute, sql, params, many, context):
        if WORK_SLOTS not in sql:
            assert not sql.lstrip().upper().startswith(WRITES), f"a GET wrote: {sql[:80]}"
        return execute(sql, params, many, context)

    with connection.execute_wrapper(refuse_writes):
        yield


def rows(body: str) -> list[str]:
    return ROW.findall(body)


def href(body: str, pattern: str) -> str | None:
    match = re.search(pattern, body)
    return match.group(1).replace("&amp;", "&") if match else None


def params(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def get(client, url: str) -> str:
    with no_database_writes():
        response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


# --- Following Next far -----------------------------------------------------------------------


@pytest.fixture
def big_sandbox(install_sandbox, finance_client) -> SandboxAPI:
    api = install_sandbox(5000)
    # A first request renews the forced-login session (a write, after rendering, every few
    # minutes); the pages under test then have nothing to write.
    finance_client.get("/customers/?limit=1")
    return api


def test_following_next_200_times_keeps_the_rows_the_filters_and_first_right(
    finance_client, big_sandbox
):
    archived = [c["id"] for c in big_sandbox.customers if c.get("archived_at")]
    assert len(archived) > 404
    url = "/customers/?only_archived=true&limit=2"
    body = get(finance_client, url)
    for _ in range(200):
        url = href(body, r'<a rel="next" href="([^"]+)"')
        assert url is not None
        assert len(urlsplit(url).query) <= urlstate.MAX_QUERY_STRING + 2000
        body = get(finance_client, url)

    assert rows(body) == archived[400:402]
    assert "Rows 401–402" in body and "Page 201" in body
    assert params(url)["only_archived"] == ["true"] and params(url)["limit"] == ["2"]
    assert "search" not in params(url), "a page link was stored instead of spelled out"
    first = href(body, r'<a href="([^"]+)"[^>]*>« First</a>')
    assert first == "/customers/?only_archived=true&limit=2"
    assert rows(get(finance_client, first)) == archived[:2]
    previous = href(body, r'<a rel="prev" href="([^"]+)"')
    assert previous is not None
    assert rows(get(finance_client, previous)) == archived[398:400]
    next_page = get(finance_client, href(body, r'<a rel="next" href="([^"]+)"'))
    assert rows(next_page) == archived[402:404] and "Rows 403–404" in next_page


def test_a_stored_search_paged_200_times_keeps_its_key_its_page_size_and_first(
    finance_client, big_sandbox
):
    active = [c["id"] for c in big_sandbox.customers if not c.get("archived_at")][:450]
    stored = finance_client.post("/customers/", {"customer_ids": "\n".join(active), "limit": "2"})
    key = params(stored.url)["search"][0]
    body = get(finance_client, stored.url)
    for _ in range(200):
        url = href(body, r'<a rel="next" href="([^"]+)"')
        body = get(finance_client, url)

    assert rows(body) == active[400:402]
    assert "Rows 401–402" in body
    assert params(url)["search"] == [key] and params(url)["limit"] == ["2"]
    first = href(body, r'<a href="([^"]+)"[^>]*>« First</a>')
    assert first == f"/customers/?search={key}&limit=2"
    assert rows(get(finance_client, first)) == active[:2]


def test_rendering_any_page_writes_nothing(finance_client, big_sandbox):
    body = get(finance_client, "/customers/?limit=2")
    for _ in range(3):
        body = get(finance_client, href(body, r'<a rel="next" href="([^"]+)"'))
    get(finance_client, href(body, r'<a rel="prev" href="([^"]+)"'))
    get(finance_client, "/customers/?search=doesnotexist")
    get(finance_client, "/customers/?next_page=garbage&prev=x&page=9")


# --- The links, unit by unit --------------------------------------------------------------


def test_empty_parameters_are_left_out_of_urls():
    query = CustomerQuery(ingest_alias="a b")
    assert urlstate.filter_params(query) == {"ingest_alias": "a b"}
    assert urlstate.list_url({"ingest_alias": "a b", "customer_ids": "", "prev": []}) == (
        "/customers/?ingest_alias=a+b"
    )
    assert urlstate.list_url({}) == "/customers/"


def test_the_default_page_size_is_left_out_and_others_kept():
    query = CustomerQuery(ingest_alias="x")
    assert urlstate.search_params(query, saved_key=None, limit=50) == {"ingest_alias": "x"}
    assert urlstate.search_params(query, saved_key="abc", limit=10) == {
        "search": "abc",
        "limit": "10",
    }


def test_the_toggle_travels_beside_a_stored_search_key_not_inside_it():
    archived = CustomerQuery(customer_ids=("a",), only_archived=True)
    assert urlstate.search_params(archived, saved_key="abc", limit=50) == {
        "search": "abc",
        "only_archived": "true",
    }
    active = CustomerQuery(customer_ids=("a",))
    assert urlstate.search_params(active, saved_key="abc", limit=50) == {"search": "abc"}
    # An older stored search may hold only_archived=true: a URL's "false" is kept in links.
    assert urlstate.search_params(active, saved_key="abc", limit=50, toggle_in_url=True) == {
        "search": "abc",
        "only_archived": "false",
    }


def test_the_switch_link_keeps_the_pasted_list_and_starts_from_page_one():
    filters = {"salesforce_account_ids": "001xx000003DHur,Account ID", "limit": "10"}
    assert urlstate.switch_state_url(filters, to_archived=True) == (
        "/customers/?salesforce_account_ids=001xx000003DHur%2CAccount+ID&limit=10"
        "&only_archived=true"
    )
    archived = {**filters, "only_archived": "true"}
    assert urlstate.switch_state_url(archived, to_archived=False) == (
        "/customers/?salesforce_account_ids=001xx000003DHur%2CAccount+ID&limit=10"
    )
    assert urlstate.switch_state_url({"search": "abc"}, to_archived=True) == (
        "/customers/?search=abc&only_archived=true"
    )
    assert urlstate.switch_state_url(
        {"search": "abc", "only_archived": "true"}, to_archived=False
    ) == ("/customers/?search=abc&only_archived=false")


def test_filter_params_carry_the_paste_boxes_as_pasted_when_given():
    query = CustomerQuery(salesforce_account_ids=("001xx000003DHurAAG",))
    assert urlstate.filter_params(query) == {"salesforce_account_ids": "001xx000003DHurAAG"}
    assert urlstate.filter_params(
        query, {"salesforce_account_ids": "001xx000003DHur,Account ID"}
    ) == {"salesforce_account_ids": "001xx000003DHur,Account ID"}


def signed(cursor: str, limit: int, page: int, trail: Sequence[str] = ()) -> str:
    """The `page_sig` the dashboard's own links carry for `cursor` as page `page`."""
    return urlstate.position_signature("", cursor, trail, limit, page)


def test_every_page_has_a_refresh_link_that_its_own_link_does_not_keep():
    links = urlstate.page_links(
        {"ingest_alias": "x"},
        cursor="c2",
        trail=[],
        page=2,
        signature=signed("c2", 10, 2),
        limit=10,
        next_cursor=None,
        rows=3,
    )
    assert links.this_url == (
        f"/customers/?ingest_alias=x&next_page=c2&page=2&page_sig={signed('c2', 10, 2)}"
    )
    assert links.refresh_url == links.this_url + "&refresh=true"
    assert (
        "refresh"
        not in urlstate.page_links(
            {}, cursor=None, trail=[], page=None, limit=10, next_cursor="c2", rows=10
        ).next_url
    )


def test_page_one_has_no_previous_and_page_two_goes_back_to_page_one():
    search = {"ingest_alias": "x"}
    first = urlstate.page_links(
        search, cursor=None, trail=[], page=None, limit=10, next_cursor="c2", rows=10
    )
    assert (first.page_number, first.previous_url) == (1, None)
    assert first.next_url == (
        f"/customers/?ingest_alias=x&next_page=c2&page=2&page_sig={signed('c2', 10, 2)}"
    )
    second = urlstate.page_links(
        search,
        cursor="c2",
        trail=[],
        page=2,
        signature=signed("c2", 10, 2),
        limit=10,
        next_cursor="c3",
        rows=10,
    )
    assert second.previous_url == second.first_url == "/customers/?ingest_alias=x"
    assert second.next_url == (
        f"/customers/?ingest_alias=x&next_page=c3&page=3&page_sig={signed('c3', 10, 3, ['c2'])}"
        "&prev=c2"
    )
    assert (second.first_row, second.last_row) == (11, 20)


def test_a_trail_too_long_for_a_url_keeps_its_newest_cursors_and_previous_gives_way_to_first():
    trail = [f"{'p' * 100}{n}" for n in range(80)]
    links = urlstate.page_links(
        {"limit": "10"},
        cursor="current",
        trail=trail,
        page=82,
        signature=signed("current", 10, 82, trail),
        limit=10,
        next_cursor="n",
        rows=10,
    )
    assert links.next_url is not None
    for url in (links.next_url, links.this_url, links.refresh_url, links.previous_url):
        assert url is not None and len(urlsplit(url).query) <= urlstate.MAX_QUERY_STRING
    kept = params(links.next_url)["prev"]
    assert kept[-1] == "current" and kept == [*trail, "current"][-len(kept) :]
    assert params(links.next_url)["page"] == ["83"]
    assert params(links.next_url)["page_sig"] == [signed("n", 10, 83, kept)]
    assert links.page_number == 82 and links.first_row == 811

    # A page whose URL kept no earlier cursor (its own fills the link): no Previous, First
    # still works, and the URL's signed page number is the only one there is.
    huge = "c" * (urlstate.MAX_QUERY_STRING - 100)
    cut = urlstate.page_links(
        {"limit": "10"},
        cursor=huge,
        trail=[],
        page=90,
        signature=signed(huge, 10, 90),
        limit=10,
        next_cursor=None,
        rows=3,
    )
    assert cut.previous_url is None and cut.first_url == "/customers/?limit=10"
    assert (cut.page_number, cut.first_row, cut.last_row) == (90, 891, 893)


@pytest.mark.parametrize(
    "page, trail, signature",
    [
        (50, [], ""),  # `page=50` typed into page 2's link
        (50, [], signed("c2", 10, 2)),  # ... beside page 2's signature
        (2, ["x", "y", "z"], ""),  # made-up `prev` cursors, no signature
        (2, [], signed("c2", 25, 2)),  # the signature of another page size
        (2, [], signed("c9", 10, 2)),  # ... of another cursor
        (2, [], signed("c2", 10, 2)[:-1] + "A"),  # ... altered
        (3, ["c1", "x"], signed("c2", 10, 3, ["c1", "c1b"])),  # another trail (Previous)
        (2, [], urlstate.position_signature("f00d", "c2", [], 10, 2)),  # another search's
        (None, [], ""),  # a link older than signed positions
    ],
)
def test_a_page_whose_number_nobody_vouches_for_shows_its_rows_unnumbered(page, trail, signature):
    links = urlstate.page_links(
        {"ingest_alias": "x"},
        cursor="c2",
        trail=trail,
        page=page,
        signature=signature,
        limit=10,
        next_cursor="c3",
        rows=10,
    )
    assert (links.page_number, links.first_row, links.last_row) == (None, None, None)
    # Its links claim no number either, so the pages they lead to are unnumbered too.
    assert links.next_url is not None
    assert "page" not in params(links.next_url) and "page_sig" not in params(links.next_url)
    assert "page" not in params(links.this_url)
    assert links.first_url == "/customers/?ingest_alias=x"
    if trail:
        assert links.previous_url is not None
        assert params(links.previous_url)["next_page"] == [trail[-1]]
        assert "page" not in params(links.previous_url)
    else:
        assert links.previous_url is None


def test_a_signature_from_a_rotated_out_secret_key_still_vouches(settings):
    old = urlstate.position_signature("", "c2", [], 10, 2, secret="old-secret-key" * 4)
    settings.SECRET_KEY_FALLBACKS = ["old-secret-key" * 4]
    links = urlstate.page_links(
        {}, cursor="c2", trail=[], page=2, signature=old, limit=10, next_cursor=None, rows=3
    )
    assert (links.page_number, links.first_row) == (2, 11)
    # The links it builds are signed with the current key.
    assert params(links.this_url)["page_sig"] == [signed("c2", 10, 2)]


def test_a_pasted_id_searchs_rows_are_where_its_offset_cursor_says():
    pasted = urlstate.page_links(
        {"customer_ids": "a"},
        cursor="20",
        trail=["10"],
        page=9,
        limit=10,
        next_cursor=None,
        rows=4,
        offset_cursor=True,
    )
    assert (pasted.page_number, pasted.first_row, pasted.last_row) == (3, 21, 24)
    assert "page_sig" not in params(pasted.this_url)
    # An offset typed off the page boundaries: its rows are numbered, no page is claimed,
    # and First is offered.
    typed = urlstate.page_links(
        {"customer_ids": "a"},
        cursor="7",
        trail=[],
        page=None,
        limit=10,
        next_cursor="17",
        rows=10,
        offset_cursor=True,
    )
    assert (typed.page_number, typed.first_row, typed.last_row) == (None, 8, 17)
    assert typed.next_url is not None and "page" not in params(typed.next_url)


def test_the_export_link_names_the_search_without_page_size_or_position():
    state = urlstate.ListState(
        query=CustomerQuery(), saved_key="k", limit=10, cursor="c", trail=("b",), page=3
    )
    assert state.download_url() == "/customers/export.csv?search=k"
    assert state.download_url("customers:export_report") == "/customers/match-report.csv?search=k"


def test_a_stored_search_gives_only_its_filters_the_url_the_rest(db):
    from django.http import QueryDict

    from customers.models import SavedSearch

    # As the old paging links stored them: filters, page size and position under one key.
    legacy = SavedSearch.objects.create(
        key="legacy0000000000",
        params={"only_archived": ["true"], "limit": ["7"], "next_page": ["c"], "prev": ["b"]},
    )
    expanded, unknown = listing.expand_saved_search(QueryDict(f"search={legacy.key}&limit=2"))
    assert not unknown
    assert dict(expanded.lists()) == {"only_archived": ["true"], "limit": ["2"]}


def test_filters_beside_a_stored_key_are_ignored_so_page_links_and_csv_agree():
    from django.http import QueryDict

    from customers.models import SavedSearch

    stored = SavedSearch.objects.create(
        key="abc123", params={"ingest_alias": ["acct_1"], "only_archived": ["true"]}
    )
    params, unknown = listing.expand_saved_search(
        QueryDict(
            f"search={stored.key}&ingest_alias=other&customer_ids=x&only_archived=false&limit=10"
        )
    )
    assert not unknown
    assert params.getlist("ingest_alias") == ["acct_1"]
    assert "customer_ids" not in params
    # The toggle and the page size travel beside the key.
    assert params["only_archived"] == "false" and params["limit"] == "10"


# --- Index searches ---------------------------------------------------------------------------


def test_index_pages_show_numbers_around_the_current_one_with_gaps():
    from customers.index.search import IndexResult

    result = IndexResult(total=1284, customer_ids=("x",) * 50, page=7, per_page=50)
    links = urlstate.index_page_links({"q": "acme"}, result)

    shown = [number.number if number else "…" for number in links.numbers]
    assert shown == [1, "…", 5, 6, 7, 8, 9, "…", 26]
    assert [n.current for n in links.numbers if n] == [
        False,
        False,
        False,
        True,
        False,
        False,
        False,
    ]
    assert links.first_url == "/customers/?q=acme"
    assert links.previous_url == "/customers/?q=acme&page=6"
    assert links.next_url == "/customers/?q=acme&page=8"
    assert (links.first_row, links.last_row, links.total_shown) == (301, 350, "1,284")


def test_index_pages_past_the_count_cap_claim_no_last_page():
    from customers.index.search import TOTAL_CAP, IndexResult

    result = IndexResult(
        total=TOTAL_CAP,
        customer_ids=("x",) * 50,
        page=250,
        per_page=50,
        total_exact=False,
        has_more=True,
    )
    links = urlstate.index_page_links({"q": ""}, result)

    shown = [number.number if number else "…" for number in links.numbers]
    assert shown == [1, "…", 248, 249, 250, 251]  # one past this full page, no "last" one
    assert links.next_url == "/customers/?page=251"
    assert links.total_shown == "more than 10,000"
    assert (links.first_row, links.last_row) == (12451, 12500)


def test_a_sort_link_flips_the_current_column_and_starts_at_page_one():
    from customers.index.search import Sort

    links = urlstate.sort_links({"q": "acme", "sort": "name", "page": "3"}, Sort.NAME)

    assert links["name"].url == "/customers/?q=acme&sort=-name"
    assert links["name"].aria_sort == "ascending"
    assert links["created"].url == "/customers/?q=acme&sort=created"
    assert links["created"].aria_sort == ""


def test_url_state_reads_no_database_and_no_request():
    """Data flows one way: urlstate turns a validated state into links and nothing else
    (a stored search is expanded before the form, in customers/listing.py)."""
    import ast
    from pathlib import Path

    source = Path(urlstate.__file__).read_text()
    imported = {
        node.module
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "customers.models" not in imported
    assert not any(name.startswith("customers.views") for name in imported)
    assert "SavedSearch" not in source and "HttpRequest" not in source and "request." not in source
