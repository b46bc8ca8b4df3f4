"""The customers page through Django's test client: filters, pasted IDs, match report,
paging, htmx fragments, errors and stored searches. Hostile input:
tests/security/test_hostile_input.py."""

import re
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from django.contrib.auth.models import Group, User

from customers.models import SavedSearch
from customers.pasted import extract_salesforce_ids
from customers.salesforce import to_18
from customers.sandbox import SandboxAPI, generate_customers

pytestmark = pytest.mark.django_db

SANDBOX_SIZE = 1200
ROW = re.compile(r'<tr data-customer-id="([0-9a-f-]{36})"')


def rows(response) -> list[str]:
    return ROW.findall(response.content.decode())


def link(response, rel: str) -> str:
    match = re.search(rf'<a rel="{rel}" href="([^"]+)"', response.content.decode())
    assert match, f"no rel={rel} link"
    return match.group(1).replace("&amp;", "&")


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def first_link(response) -> str:
    match = re.search(r'<a href="([^"]+)"[^>]*>« First</a>', response.content.decode())
    assert match, "no First link"
    return match.group(1).replace("&amp;", "&")


@pytest.fixture
def sandbox(install_sandbox) -> SandboxAPI:
    return install_sandbox(SANDBOX_SIZE)


@pytest.fixture
def sent(install_client) -> list[httpx.Request]:
    """Records every request the page sends to Metronome; answers with an empty list."""
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"data": [], "next_page": None})

    install_client(httpx.MockTransport(answer))
    return requests


def customers_wire() -> list[dict]:
    return list(generate_customers(SANDBOX_SIZE))


def active(customers: list[dict]) -> list[dict]:
    return [c for c in customers if not c.get("archived_at")]


def archived(customers: list[dict]) -> list[dict]:
    return [c for c in customers if c.get("archived_at")]


def sf_id(customer: dict) -> str | None:
    return customer["customer_config"]["salesforce_account_id"]


# --- URL state and the outgoing query ---------------------------------------------------------


def test_no_template_syntax_leaks_into_the_page(support_client, sandbox):
    body = support_client.get("/customers/?customer_ids=x").content.decode()
    assert not re.search(r"\{[#%{]|[#%}]\}", body)


def test_root_redirects_to_the_customers_page(support_client):
    assert support_client.get("/").url == "/customers/"


def test_first_page_lists_active_customers_in_api_order(support_client, sandbox):
    response = support_client.get("/customers/")
    assert response.status_code == 200
    assert rows(response) == [c["id"] for c in active(customers_wire())[:50]]
    assert "Rows 1–50" in response.content.decode()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"only_archived": ["false"], "limit": ["50"]}),
        ("only_archived=true", {"only_archived": ["true"], "limit": ["50"]}),
        ("only_archived=1", {"only_archived": ["true"], "limit": ["50"]}),
        ("only_archived=on", {"only_archived": ["true"], "limit": ["50"]}),
        ("only_archived=0", {"only_archived": ["false"], "limit": ["50"]}),
        ("limit=25", {"only_archived": ["false"], "limit": ["25"]}),
        (
            "ingest_alias=acct_42",
            {"ingest_alias": ["acct_42"], "only_archived": ["false"], "limit": ["50"]},
        ),
        (
            "salesforce_account_ids=001xx000003DHurAAG%0D%0Aa0D30000001n7Pi%09001xx000003DHurAAG",
            {
                # Each pasted ID in both forms, whichever Metronome stores.
                "salesforce_account_ids": [
                    "001xx000003DHurAAG,001xx000003DHur,a0D30000001n7PiEAI,a0D30000001n7Pi"
                ],
                "only_archived": ["false"],
                # Pasted IDs are looked up in full, in pages of 100, for the match report.
                "limit": ["100"],
            },
        ),
        (
            "customer_ids=182BD5E5-6E1A-4FE4-A799-AA6D9A6AB26E",
            {
                "customer_ids": ["182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e"],
                "only_archived": ["false"],
                "limit": ["100"],
            },
        ),
        (
            "next_page=abc123",
            {"only_archived": ["false"], "limit": ["50"], "next_page": ["abc123"]},
        ),
    ],
)
def test_each_filter_reaches_the_api_as_the_sdk_would_send_it(
    support_client, sent, query, expected
):
    support_client.get(f"/customers/?{query}")
    queries = [parse_qs(request.url.query.decode(), keep_blank_values=True) for request in sent]
    # Pasted IDs are looked up in both states side by side, in no fixed order: the one in
    # the state the page shows is the one compared.
    (page_request,) = [q for q in queries if q["only_archived"] == expected["only_archived"]]
    assert page_request == expected


def test_an_id_list_is_sent_as_one_comma_joined_parameter(support_client, sent):
    support_client.get("/customers/?salesforce_account_ids=001xx000003DHurAAG,a0D30000001n7PiEAI")
    assert (
        b"salesforce_account_ids=001xx000003DHurAAG%2C001xx000003DHur%2Ca0D30000001n7PiEAI%2C"
        b"a0D30000001n7Pi&" in sent[0].url.query
    )


def test_a_thousand_pasted_ids_are_searched_in_batches(support_client, sandbox):
    wanted = [c["id"] for c in active(customers_wire())[:1000]]
    before = sandbox.request_count
    response = support_client.post(
        "/customers/", {"customer_ids": "\n".join(wanted), "limit": "100"}
    )
    response = support_client.get(response.url)
    assert rows(response) == wanted[:100]
    assert "1000</strong> pasted" in response.content.decode()
    # 10 batches for each toggle state of the match report; the page is cut from them.
    assert sandbox.request_count - before == 20


def test_more_than_a_thousand_ids_is_a_form_error_and_nothing_is_sent(support_client, sent):
    ids = "\n".join(f"001A{n:014d}" for n in range(1001))
    response = support_client.post("/customers/", {"salesforce_account_ids": ids})
    assert response.status_code == 200
    assert (
        "1,001 Salesforce account IDs were pasted; search at most 1,000"
        in response.content.decode()
    )
    assert sent == []


def test_what_is_not_a_customer_id_is_ignored_and_reported_not_an_error(support_client, sent):
    response = support_client.get(
        "/customers/?customer_ids=182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e,not-a-uuid"
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "Check the filters" not in body
    assert re.findall(r"<code data-ignored-value>([^<]*)</code>", body) == ["not-a-uuid"]
    assert b"customer_ids=182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e&" in sent[0].url.query


def test_a_report_column_with_header_and_total_finds_its_accounts(support_client, sandbox):
    customers = [c for c in active(customers_wire()) if sf_id(c)][:3]
    column = "\n".join(["Account ID", *(sf_id(c) for c in customers), "Total 3"])
    response = support_client.get("/customers/", {"salesforce_account_ids": column})
    body = response.content.decode()
    assert set(rows(response)) == {c["id"] for c in customers}
    assert re.search(r'data-count="pasted">3<', body)
    assert re.findall(r"<code data-ignored-value>([^<]*)</code>", body) == [
        "Account ID",
        "Total 3",
    ]


def test_a_box_with_no_id_in_it_is_a_form_error_naming_what_it_held(support_client, sent):
    response = support_client.get("/customers/?customer_ids=not-a-uuid")
    body = response.content.decode()
    assert "Check the filters" in body
    assert "No Metronome customer ID found in “not-a-uuid”" in body
    assert sent == []


def test_a_long_search_is_stored_and_shown_under_a_short_url(support_client, sandbox):
    wanted = [sf_id(c) for c in active(customers_wire()) if sf_id(c)][:400]
    response = support_client.post("/customers/", {"salesforce_account_ids": " ".join(wanted)})
    assert response.status_code == 303
    location = response.url
    assert len(location) < 100 and "search=" in location
    key = parse_qs(urlsplit(location).query)["search"][0]
    assert SavedSearch.objects.get(key=key).params["salesforce_account_ids"] == [",".join(wanted)]
    page = support_client.get(location)
    assert len(rows(page)) == 50
    assert "400</strong> pasted" in page.content.decode()
    # Paging keeps the short key instead of spelling the list out again.
    assert "search=" in link(page, "next") and "salesforce_account_ids" not in link(page, "next")


def test_a_short_search_posted_is_redirected_to_a_plain_readable_url(support_client, sandbox):
    response = support_client.post("/customers/", {"ingest_alias": "x", "only_archived": "true"})
    assert response.status_code == 303
    assert response.url == "/customers/?ingest_alias=x&only_archived=true"


def test_an_htmx_post_answers_the_fragment_and_pushes_the_short_url(support_client, sandbox):
    wanted = [c["id"] for c in active(customers_wire())[:300]]
    response = support_client.post(
        "/customers/", {"customer_ids": ",".join(wanted)}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert response["HX-Push-Url"].startswith("/customers/?search=")
    assert rows(response) == wanted[:50]
    assert b"<html" not in response.content


def test_an_unknown_saved_search_says_so_and_shows_everyone(support_client, sandbox):
    response = support_client.get("/customers/?search=doesnotexist")
    assert "That saved search does not exist" in response.content.decode()
    assert len(rows(response)) == 50


# --- Match report -----------------------------------------------------------------------------


def test_match_report_counts_pasted_matched_archived_and_not_found(support_client, sandbox):
    customers = customers_wire()
    shared = {
        sf
        for sf in (sf_id(c) for c in customers)
        if sf and sum(sf_id(d) == sf for d in customers) > 1
    }
    active_ids = [sf_id(c) for c in active(customers) if sf_id(c) not in {None, *shared}][:3]
    archived_ids = [sf_id(c) for c in archived(customers) if sf_id(c) not in {None, *shared}][:2]
    unknown = [to_18("001ZZ0000000000"), to_18("001ZZ0000000001")]
    pasted = "\n".join([*active_ids, *archived_ids, *unknown])

    response = support_client.get("/customers/", {"salesforce_account_ids": pasted})
    body = response.content.decode()
    assert re.search(r'data-count="pasted">7<', body)
    assert re.search(r'data-count="matched">3<', body)
    assert "3 matched active customers." in body
    assert re.findall(r'data-matched-id="([^"]+)"', body) == active_ids
    assert re.search(r'data-count="other-state">2<', body)
    assert re.search(r'data-count="not-found">2<', body)
    assert re.findall(r'data-unmatched-id="([^"]+)"', body) == unknown
    assert re.findall(r'data-other-state-id="([^"]+)"', body) == archived_ids
    assert "switch to Archived" in body

    # With the Archived toggle on, the active ones are the hidden ones; still not "not found".
    response = support_client.get(
        "/customers/", {"salesforce_account_ids": pasted, "only_archived": "true"}
    )
    body = response.content.decode()
    assert re.search(r'data-count="matched">2<', body)
    assert re.findall(r'data-other-state-id="([^"]+)"', body) == active_ids

    # One matched: said in the singular.
    single = support_client.get("/customers/", {"salesforce_account_ids": active_ids[0]})
    assert "1 matched active customer." in single.content.decode()
    assert re.findall(r'data-unmatched-id="([^"]+)"', body) == unknown


# --- Paging -----------------------------------------------------------------------------------


def test_next_previous_and_first_show_the_right_rows_even_from_a_fresh_load(
    support_client, sandbox
):
    everyone = [c["id"] for c in active(customers_wire())]
    page1 = support_client.get("/customers/?limit=10")
    assert rows(page1) == everyone[:10]
    assert 'rel="prev"' not in page1.content.decode()

    page2 = support_client.get(link(page1, "next"))
    page3 = support_client.get(link(page2, "next"))
    assert rows(page2) == everyone[10:20]
    assert rows(page3) == everyone[20:30]
    assert "Rows 21–30" in page3.content.decode()

    # Each link is a fresh GET, as after a reload or from a link pasted into a ticket.
    back_to_2 = support_client.get(link(page3, "prev"))
    assert rows(back_to_2) == everyone[10:20]
    back_to_1 = support_client.get(link(back_to_2, "prev"))
    assert rows(back_to_1) == everyone[:10]
    assert rows(support_client.get(first_link(page3))) == everyone[:10]


def test_a_page_link_edited_by_hand_shows_its_rows_unnumbered(support_client, sandbox):
    """Metronome's cursors are opaque: a page's number is the dashboard's word, signed into
    its links. Made-up `prev` cursors or a typed `page=` cannot relabel the rows."""
    everyone = [c["id"] for c in active(customers_wire())]
    page2 = support_client.get(link(support_client.get("/customers/?limit=10"), "next"))
    page3_link = link(page2, "next")
    assert "Rows 21–30" in support_client.get(page3_link).content.decode()

    for edit in (
        lambda q: {**q, "prev": ["made-up", *q["prev"]]},  # one page more before it
        lambda q: {**q, "page": ["9"]},
        lambda q: {k: v for k, v in q.items() if k != "page_sig"},  # an unsigned link
    ):
        url = "/customers/?" + urlencode(edit(query(page3_link)), True)
        edited = support_client.get(url)
        body = edited.content.decode()
        assert edited.status_code == 200
        assert rows(edited) == everyone[20:30]  # the cursor's rows, as asked
        assert "Rows " not in body and "10 rows" in body and "page number unknown" in body
        fragment = support_client.get(url, HTTP_HX_REQUEST="true").content.decode()
        assert "Showing 10 rows." in fragment  # what a screen reader hears
        # Its Next leads on, unnumbered too; First starts over, numbered.
        after = support_client.get(link(edited, "next"))
        assert rows(after) == everyone[30:40] and "page number unknown" in after.content.decode()
        assert "Rows 1–10" in support_client.get(first_link(edited)).content.decode()


def test_batched_search_pages_through_every_match_exactly_once(support_client, sandbox):
    wanted = [c["id"] for c in active(customers_wire())[:250]]
    stored = support_client.post("/customers/", {"customer_ids": ",".join(wanted), "limit": "100"})
    response = support_client.get(stored.url)
    seen = rows(response)
    while 'rel="next"' in response.content.decode():
        response = support_client.get(link(response, "next"))
        seen += rows(response)
    assert seen == wanted


def test_the_last_page_has_no_next_link(support_client, sandbox):
    last = active(customers_wire())[-3:]
    response = support_client.get(
        "/customers/", {"customer_ids": ",".join(c["id"] for c in last), "limit": "10"}
    )
    assert len(rows(response)) == 3
    assert 'rel="next"' not in response.content.decode()


def test_a_garbage_cursor_gives_a_fresh_first_page(support_client, sandbox):
    response = support_client.get("/customers/?next_page=%3Cgarbage%3E&prev=x")
    assert response.status_code == 200
    assert "That page link has expired" in response.content.decode()
    assert rows(response) == [c["id"] for c in active(customers_wire())[:50]]


def test_a_pasted_search_link_past_its_last_match_says_so_and_shows_page_one(
    support_client, sandbox
):
    wanted = [c["id"] for c in active(customers_wire())[:3]]
    search = {"customer_ids": ",".join(wanted), "limit": "10", "refresh": "true"}
    calls = sandbox.request_count
    support_client.get("/customers/", search)
    page_one_calls = sandbox.request_count - calls

    calls = sandbox.request_count
    response = support_client.get("/customers/", {**search, "next_page": "40"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "belongs to another search" in body
    assert rows(response) == wanted and "Rows 1–3" in body
    assert sandbox.request_count - calls == page_one_calls, "the lookups made once"


# --- htmx -------------------------------------------------------------------------------------


def test_htmx_requests_get_the_results_fragment_and_others_the_page(support_client, sandbox):
    page = support_client.get("/customers/")
    fragment = support_client.get("/customers/", HTTP_HX_REQUEST="true")
    assert b"<html" in page.content
    assert b"<html" not in fragment.content
    assert fragment.content.decode().lstrip().startswith('<section id="results"')
    assert rows(fragment) == rows(page)
    assert "HX-Request" in page["Vary"] and "HX-Request" in fragment["Vary"]


def test_a_history_restore_request_gets_the_full_page(support_client, sandbox):
    response = support_client.get(
        "/customers/", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )
    assert b"<html" in response.content


def test_the_fragment_updates_the_screen_reader_announcement(support_client, sandbox):
    fragment = support_client.get("/customers/?limit=10", HTTP_HX_REQUEST="true")
    assert re.search(
        r'<div id="announcement" hx-swap-oob="innerHTML">Showing rows 1 to 10\.</div>',
        fragment.content.decode(),
    )


def test_empty_results_say_so_and_suggest_what_to_change(support_client, sandbox):
    response = support_client.get("/customers/?ingest_alias=nobody-has-this")
    body = response.content.decode()
    assert "No active customers match" in body
    assert "clear the filters" in body


# --- Errors -----------------------------------------------------------------------------------


def failing_with(status: int, headers: dict | None = None):
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"message": "nope"}, headers=headers or {})

    return httpx.MockTransport(answer)


def timing_out(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("slow", request=request)


@pytest.mark.parametrize(
    ("transport", "message"),
    [
        (failing_with(401), "Metronome rejected the API token"),
        (failing_with(403), "Metronome rejected the API token"),
        (
            failing_with(429, {"Retry-After": "30"}),
            # Clamped to the retry budget (5 s): never Metronome's number as it came.
            "Metronome is rate limiting us, try again in 5 s",
        ),
        (failing_with(503), "Metronome is not answering normally (HTTP 503)"),
        (httpx.MockTransport(timing_out), "Metronome did not answer in 10 s"),
        (failing_with(400), "Metronome refused the request as not valid (HTTP 400)."),
    ],
)
def test_a_metronome_failure_is_explained_in_the_results_region_with_retry(
    support_client, transport, message, install_client
):
    install_client(transport, timeout=10, retry_budget=5)
    response = support_client.get("/customers/?limit=25", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert message in body
    assert re.search(
        r'<a class="button" href="/customers/\?limit=25" hx-get="[^"]+">Retry</a>', body
    )


def test_the_full_page_still_renders_its_filters_when_metronome_fails(
    support_client, install_client
):
    install_client(failing_with(503), retry_budget=0)
    response = support_client.get("/customers/")
    body = response.content.decode()
    assert response.status_code == 200
    assert 'id="filters"' in body and "Could not load customers" in body


def test_letters_in_limit_are_a_form_error_not_an_api_call(support_client, sent):
    response = support_client.get("/customers/?limit=abc", HTTP_HX_REQUEST="true")
    assert "Check the filters" in response.content.decode()
    assert sent == []


def test_an_unusual_page_size_from_a_url_is_kept_and_selected(support_client, sandbox):
    response = support_client.get("/customers/?limit=7")
    body = response.content.decode()
    assert len(rows(response)) == 7
    assert '<option value="7" selected>' in body


# --- Stored searches: only by POST, within a quota ------------------------------------------


def test_a_get_too_long_for_a_link_stores_nothing_and_offers_to_post_it(support_client, sandbox):
    wanted = [c["id"] for c in active(customers_wire())[:300]]
    response = support_client.get("/customers/", {"customer_ids": ",".join(wanted)})
    body = response.content.decode()
    assert response.status_code == 200
    assert "This search is too long for a link" in body
    assert re.search(r'<form method="post" action="/customers/"', body)
    assert "csrfmiddlewaretoken" in body
    assert SavedSearch.objects.count() == 0
    assert rows(response) == []


def test_a_post_without_a_csrf_token_stores_nothing(sandbox, db):
    from django.test import Client

    user = User.objects.create_user("csrf")
    user.groups.add(Group.objects.get(name="Support"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    wanted = [c["id"] for c in active(customers_wire())[:300]]
    response = client.post("/customers/", {"customer_ids": ",".join(wanted)})
    assert response.status_code == 403
    assert SavedSearch.objects.count() == 0


def test_stored_searches_record_who_stored_them(support_client, sandbox):
    wanted = [c["id"] for c in active(customers_wire())[:300]]
    response = support_client.post("/customers/", {"customer_ids": ",".join(wanted)})
    saved = SavedSearch.objects.get(key=parse_qs(urlsplit(response.url).query)["search"][0])
    assert saved.created_by.username == "sam"
    assert set(saved.params) == {"customer_ids"}, "only filters are stored"


def test_a_person_past_the_daily_quota_is_told_and_nothing_is_stored(
    support_client, sandbox, settings
):
    settings.SAVED_SEARCHES_PER_DAY = 2
    customers = active(customers_wire())
    for start in (0, 1):
        ids = [c["id"] for c in customers[start : start + 300]]
        assert (
            support_client.post("/customers/", {"customer_ids": ",".join(ids)}).status_code == 303
        )
    # The same search again is not a new one: it is found, not stored twice.
    again = [c["id"] for c in customers[0:300]]
    assert support_client.post("/customers/", {"customer_ids": ",".join(again)}).status_code == 303

    ids = [c["id"] for c in customers[2:302]]
    response = support_client.post("/customers/", {"customer_ids": ",".join(ids)})
    body = response.content.decode()
    assert response.status_code == 200
    assert "Search not stored." in body and "2 long searches in the last 24 hours" in body
    assert SavedSearch.objects.count() == 2

    # Someone else still may.
    other = User.objects.create_user("other")
    other.groups.add(Group.objects.get(name="Support"))
    support_client.force_login(other)
    assert support_client.post("/customers/", {"customer_ids": ",".join(ids)}).status_code == 303


# --- Salesforce IDs in either form, and what a stored search keeps -----------------------------


def stored_in_each_form(customers: list[dict], count: int) -> list[dict]:
    """`count` active customers with a Salesforce ID nobody else holds, half storing the
    15-character form and half the 18-character one."""
    held = [sf_id(c)[:15] for c in customers if sf_id(c)]
    unique = [c for c in active(customers) if sf_id(c) and held.count(sf_id(c)[:15]) == 1]
    short = [c for c in unique if len(sf_id(c)) == 15][: count // 2]
    long = [c for c in unique if len(sf_id(c)) == 18][: count - len(short)]
    assert len(short) + len(long) == count
    return short + long


def only_archived_holders(customers: list[dict]) -> list[dict]:
    """Archived customers whose Salesforce ID no active customer holds."""
    held_by_active = {sf_id(c) for c in active(customers)}
    return [c for c in archived(customers) if sf_id(c) and sf_id(c) not in held_by_active]


def matched_as(body: str) -> dict[str, str]:
    return dict(
        re.findall(r'data-matched-as="([^"]+)"><code>[^<]+</code> matched as <code>([^<]+)', body)
    )


def test_a_report_column_of_15_character_ids_finds_every_account_whatever_form_is_stored(
    support_client, sandbox
):
    customers = stored_in_each_form(customers_wire(), 6)
    column = "\n".join(["Account ID", *(sf_id(c)[:15] for c in customers)])

    response = support_client.get("/customers/", {"salesforce_account_ids": column})
    body = response.content.decode()

    assert set(rows(response)) == {c["id"] for c in customers}
    assert re.search(r'data-count="matched">6<', body)
    assert re.search(r'data-count="not-found">0<', body)
    assert re.findall(r"<code data-ignored-value>([^<]*)</code>", body) == ["Account ID"]
    # Only those Metronome holds in the 18-character form matched through the other form.
    assert matched_as(body) == {sf_id(c)[:15]: sf_id(c) for c in customers if len(sf_id(c)) == 18}


def test_the_report_says_why_a_value_nearly_an_id_is_ignored(support_client, sandbox):
    found = next(sf for c in customers_wire() if (sf := sf_id(c)))
    column = "\n".join(["Account ID", found, found + "X"])

    body = support_client.get("/customers/", {"salesforce_account_ids": column}).content.decode()

    assert re.findall(r"<code data-ignored-value>([^<]*)</code>", body) == [
        "Account ID",
        found + "X",
    ]
    assert re.findall(r"data-ignored-note>\(([^)]*)\)", body) == [
        f"{len(found) + 1} characters: a Salesforce ID has 15 or 18"
    ]


def test_a_long_stored_search_keeps_its_ignored_values_and_pasted_forms(support_client, sandbox):
    customers = stored_in_each_form(customers_wire(), 120)
    column = "\n".join(
        ["Account ID", *(sf_id(c)[:15] for c in customers), "Total 120", "Total 120"]
    )
    # Long enough for a stored search: the 15-character forms and a few hundred filler IDs.
    filler = [to_18(f"001ZZ{n:010d}") for n in range(300)]
    response = support_client.post(
        "/customers/", {"salesforce_account_ids": column + "\n" + "\n".join(filler)}
    )
    assert response.status_code == 303 and "search=" in response.url

    first = support_client.get(response.url)
    for page in (first, support_client.get(link(first, "next"))):
        body = page.content.decode()
        assert re.findall(r"<code data-ignored-value>([^<]*)</code>", body) == [
            "Account ID",
            "Total 120",
        ]
        assert "×2" in body
        assert re.search(r'data-count="matched">120<', body)
        assert matched_as(body) == {
            sf_id(c)[:15]: sf_id(c) for c in customers if len(sf_id(c)) == 18
        }
        assert "Rows" in body and "of <span data-total>120</span>" in body


def test_an_old_stored_search_of_normalised_ids_and_an_old_link_still_load(support_client, sandbox):
    customers = only_archived_holders(customers_wire())[:3]
    keys = [to_18(sf_id(c)[:15]) for c in customers]
    # What a stored search held before: the normalised IDs, and the toggle among the filters.
    params = {"salesforce_account_ids": [",".join(keys)], "only_archived": ["true"]}
    SavedSearch.objects.create(key=SavedSearch.key_for(params), params=params)

    page = support_client.get(f"/customers/?search={SavedSearch.key_for(params)}")
    assert set(rows(page)) >= {c["id"] for c in customers}
    assert re.search(r'data-count="matched">3<', page.content.decode())
    switch = re.search(r'<a href="([^"]+)" hx-get="\1">switch to Active</a>', page.content.decode())
    assert switch is None, "all three are archived: nothing to switch to"

    old_link = support_client.get("/customers/", {"salesforce_account_ids": ",".join(keys)})
    assert re.search(r'data-count="other-state">3<', old_link.content.decode())
    switch = re.search(
        r'<a href="([^"]+)" hx-get="\1">switch to Archived</a>', old_link.content.decode()
    ).group(1)
    archived_page = support_client.get(switch.replace("&amp;", "&"))
    assert re.search(r'data-count="matched">3<', archived_page.content.decode())


def test_switch_to_archived_is_a_link_that_keeps_the_pasted_list_or_its_stored_key(
    support_client, sandbox
):
    customers = customers_wire()
    archived_ids = [sf_id(c) for c in only_archived_holders(customers)[:2]]
    active_ids = [sf_id(c) for c in stored_in_each_form(customers, 2)]
    pasted = "\n".join(["Account ID", *active_ids, *archived_ids])

    def switch_link(response, to: str) -> str:
        body = response.content.decode()
        found = re.search(rf'<a href="([^"]+)" hx-get="\1">switch to {to}</a>', body)
        assert found, f"no switch to {to} link"
        return found.group(1).replace("&amp;", "&")

    page = support_client.get("/customers/", {"salesforce_account_ids": pasted, "limit": "10"})
    url = switch_link(page, "Archived")
    query = parse_qs(urlsplit(url).query)
    assert query["only_archived"] == ["true"] and query["limit"] == ["10"]
    assert "Account ID" in query["salesforce_account_ids"][0]
    archived_page = support_client.get(url)
    body = archived_page.content.decode()
    assert re.search(r'data-count="matched">2<', body)
    assert re.findall(r"<code data-ignored-value>([^<]*)</code>", body) == ["Account ID"]
    assert (
        parse_qs(urlsplit(switch_link(archived_page, "Active")).query).get("only_archived") is None
    )

    # A stored search: the link keeps its key, and the toggle beside it.
    filler = "\n".join(to_18(f"001ZZ{n:010d}") for n in range(350))
    stored = support_client.post("/customers/", {"salesforce_account_ids": pasted + "\n" + filler})
    key = parse_qs(urlsplit(stored.url).query)["search"][0]
    url = switch_link(support_client.get(stored.url), "Archived")
    assert parse_qs(urlsplit(url).query) == {"search": [key], "only_archived": ["true"]}
    archived_page = support_client.get(url)
    assert re.search(r'data-count="matched">2<', archived_page.content.decode())
    assert (
        "only_archived=true" in link(archived_page, "next")
        if 'rel="next"' in (archived_page.content.decode())
        else True
    )
    back = switch_link(archived_page, "Active")
    assert parse_qs(urlsplit(back).query) == {"search": [key], "only_archived": ["false"]}
    assert re.search(r'data-count="matched">2<', support_client.get(back).content.decode())


def test_a_search_without_pasted_ids_shows_no_total(support_client, sandbox):
    body = support_client.get("/customers/?limit=10").content.decode()
    assert "Rows 1–10" in body and "data-total" not in body


# --- Cached API pages and Refresh ---------------------------------------------------------------


def test_a_page_opened_twice_asks_metronome_once_and_refresh_asks_again(support_client, sandbox):
    before = sandbox.request_count
    first = support_client.get("/customers/?limit=10")
    support_client.get("/customers/?limit=10")
    assert sandbox.request_count - before == 1

    body = first.content.decode()
    refresh = re.search(
        r'<a class="refresh" href="([^"]+)" hx-get="\1" hx-push-url="([^"]+)"', body
    )
    assert refresh, "no Refresh link"
    refresh_url, pushed = (part.replace("&amp;", "&") for part in refresh.groups())
    assert refresh_url == "/customers/?limit=10&refresh=true"
    assert pushed == "/customers/?limit=10", "the address bar never keeps refresh"
    refreshed = support_client.get(refresh_url, HTTP_HX_REQUEST="true")
    assert sandbox.request_count - before == 2
    assert rows(refreshed) == rows(first)
    assert "refresh" not in link(refreshed, "next")


def test_next_then_previous_answers_previous_from_the_cache(support_client, sandbox):
    page1 = support_client.get("/customers/?limit=10")
    page2 = support_client.get(link(page1, "next"))
    before = sandbox.request_count
    again = support_client.get(link(page2, "prev"))
    assert rows(again) == rows(page1)
    assert sandbox.request_count == before


def test_a_failed_page_is_asked_for_again_not_served_from_the_cache(support_client, install_client):
    calls: list[httpx.Request] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(503, json={"message": "down"})
        return httpx.Response(200, json={"data": [], "next_page": None})

    install_client(httpx.MockTransport(flaky), max_retries=0)
    assert "Could not load customers" in support_client.get("/customers/").content.decode()
    assert "No active customers match" in support_client.get("/customers/").content.decode()
    assert len(calls) == 2


def test_repeated_ids_are_looked_up_once_and_the_report_says_how_many(support_client, sandbox):
    # A column reconciled line by line: the lines that repeat an ID must be accounted for.
    first, second = [sf_id(c) for c in active(customers_wire()) if sf_id(c)][:2]
    pasted = "\n".join([first, second, first, first[:15], first.lower(), second])

    def report(text: str) -> str:
        response = support_client.get("/customers/", {"salesforce_account_ids": text})
        return response.content.decode()

    body = report(pasted)
    assert re.search(r'data-count="pasted">2<', body)
    assert re.search(r'data-count="repeated">4</strong> repeated, counted once', body)
    # The address a search keeps (the paste compacted: a reload, a link) says the same.
    assert re.search(r'data-count="repeated">4<', report(extract_salesforce_ids(pasted).as_text()))
    assert 'data-count="repeated"' not in report(first)


def test_a_long_column_of_ignored_values_is_folded_but_copied_whole(support_client, sandbox):
    customers = [c for c in active(customers_wire()) if sf_id(c)][:12]
    rows_pasted = "\n".join(f"{sf_id(c)}\tCompany {n}" for n, c in enumerate(customers))
    body = support_client.get("/customers/", {"salesforce_account_ids": rows_pasted}).content
    body = body.decode()
    assert "Show the 12 values" in body
    assert len(re.findall(r"<code data-ignored-value>", body)) == 12
    assert re.search(r'data-count="ignored">12<', body)


# --- The regions' thread pool ----------------------------------------------------------------


def test_the_regions_pool_has_five_threads_for_each_request_served_at_once(settings):
    from customers import customer_page

    settings.SERVER_THREADS = 3
    customer_page.region_pool.forget()
    try:
        assert customer_page.region_pool.executor()._max_workers == 5 * 3
        assert customer_page.region_pool.executor() is customer_page.region_pool.executor()
    finally:
        customer_page.region_pool.forget()


def test_the_page_is_handed_back_before_its_slowest_region_and_waits_for_it_where_shown(
    sandbox,
):
    # The page around the regions is drawn while the slowest is still awaited: load_page
    # returns with the customer, and a region's HTML is waited for where it is read.
    import threading

    from django.utils import timezone

    from customers import customer_page, wiring

    customer = sandbox.customers[0]
    usage_may_finish = threading.Event()
    drawn: list[str] = []

    def render(region) -> str:
        if region.name == "usage":
            assert usage_may_finish.wait(timeout=10)
        drawn.append(region.name)
        return f"<p>{region.name}</p>"

    page = customer_page.load_page(
        wiring.get_client(), customer["id"], now=timezone.now(), render=render
    )
    assert page.customer is not None and page.customer.id == customer["id"]
    assert "usage" not in drawn  # handed back while usage is still being drawn
    usage_may_finish.set()
    assert str(page.regions["usage"]) == "<p>usage</p>"
    page.wait()
    assert sorted(drawn) == sorted(customer_page.REGIONS)


def test_waiting_for_a_page_settles_every_region_and_logs_a_failure_no_page_showed(sandbox, caplog):
    # A region failing with a bug raises where the page shows it; one the page never read
    # (its drawing failed before, or it shows no regions) is logged, not lost or left running.
    from django.utils import timezone

    from customers import customer_page, wiring

    def render(region) -> str:
        if region.name in ("usage", "invoices"):
            raise RuntimeError(f"{region.name} broke")
        return "<p></p>"

    page = customer_page.load_page(
        wiring.get_client(), sandbox.customers[0]["id"], now=timezone.now(), render=render
    )
    with pytest.raises(RuntimeError, match="usage broke"):
        str(page.regions["usage"])
    page.wait()  # raises nothing
    assert all(region.drawing.done() for region in page.regions.values())
    failures = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert failures == ["The invoices region failed"]
