"""Attacks on the customers page since its body moved to Jinja2 (StrictUndefined): every path
through the view must give the templates every name they read (a missing one is a 500),
every value printed must be escaped, and the page's hooks for scripts must stay."""

from __future__ import annotations

import re
import uuid
from urllib.parse import quote, urlencode

import httpx
import pytest
from django.http import QueryDict
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from customers import saved_view_rules as rules
from customers.sandbox import SandboxAPI, SandboxTransport
from customers.sandbox.faults import Faults
from tests.factories import (
    CUSTOMERS,
    LIST_URL,
    client_for,
    make_user,
    markup_problems,
    text_of,
    wire_customer,
)

pytestmark = [pytest.mark.django_db]

HTMX = {"HTTP_HX_REQUEST": "true"}
RESTORE = {"HTTP_HX_REQUEST": "true", "HTTP_HX_HISTORY_RESTORE_REQUEST": "true"}
WAYS = ({}, HTMX, RESTORE)
XSS = '"><script>alert(1)</script>'


def strict(client: Client) -> Client:
    client.raise_request_exception = True
    return client


def make_view(user, name="Mine", shared=False, **params) -> str:
    state = rules.canonical_state(QueryDict(urlencode(params, doseq=True)))
    return rules.create(user, name=name, shared=shared, state=state).slug


def get_all_ways(client: Client, query: str) -> list[str]:
    bodies = []
    for headers in WAYS:
        response = client.get(f"{LIST_URL}?{query}", **headers)
        assert response.status_code < 500, (query, headers)
        bodies.append(text_of(response))
    return bodies


@pytest.fixture
def fiona(db):
    return make_user("fiona", "Finance")


@pytest.fixture
def sam(db):
    return make_user("sam", "Support")


# --- 1. Paths the tests may not walk ----------------------------------------------------------

SALESFORCE = "001xx000003DHur"


def path_queries(slug: str) -> list[str]:
    cols = "columns=name,cf.region,id"
    many = ",".join(str(uuid.UUID(int=n)) for n in range(400))
    return [
        # form errors with a saved view open and chosen columns
        f"view={slug}&{cols}&limit=abc",
        f"view={slug}&{cols}&created_from=notadate",
        f"view={slug}&{cols}&custom_field=nokey",
        # too long with chosen columns and a view
        f"view={slug}&{cols}&customer_ids={quote(many)}",
        # unknown saved search with columns and a view
        f"view={slug}&{cols}&search=deadbeefdeadbeef",
        f"view={slug}&{cols}&search=" + "\u00e9" * 5,
        # an index search that finds nothing, with and without columns
        f"view={slug}&{cols}&q=zzzzqqqqxxxx",
        "q=zzzzqqqqxxxx",
        # an index search that finds something, with columns, sorted, paged
        f"{cols}&q=acme&sort=name&page=1",
        f"{cols}&q=acme&sort=-created&page=99",
        # pasted Salesforce IDs, with and without columns, with a view
        f"salesforce_account_ids={SALESFORCE}",
        f"{cols}&salesforce_account_ids={SALESFORCE}%0Anot-an-id%0A001xx000003DHuzAAA",
        f"view={slug}&{cols}&salesforce_account_ids={SALESFORCE}&order=pasted",
        f"{cols}&salesforce_account_ids={SALESFORCE}&q=juniper",
        # pasted customer IDs that match nothing
        f"{cols}&customer_ids={uuid.UUID(int=7)}",
        f"customer_ids={uuid.UUID(int=7)}",
        # columns that are all dropped
        "columns=nope,cf.,%00",
        f"view=nosuchview&{cols}",
        f"view={'x' * 40}&{cols}",
        # billable, no salesforce id, dates
        f"{cols}&billable=billable&no_salesforce_id=on&created_from=2020-01-01",
        f"{cols}&only_archived=all&updated_to=2030-01-01",
        # a stored view, its own params
        f"view={slug}",
    ]


@pytest.fixture
def view_slug(fiona, indexed) -> str:
    return make_view(fiona, columns="name,cf.region", only_archived="false", limit="10")


def test_every_path_with_views_and_columns_answers_without_5xx(fiona, view_slug):
    client = strict(client_for(fiona))
    for query in path_queries(view_slug):
        get_all_ways(client, query)


def test_every_path_for_a_user_without_export_permission(sam, fiona, indexed):
    slug = make_view(fiona, name="Shared", shared=True, columns="name,id")
    client = strict(client_for(sam))
    for query in path_queries(slug):
        for body in get_all_ways(client, query):
            assert 'id="download-csv"' not in body and "/customers/export.csv" not in body


def failing_client(install_client, status: int = 503) -> None:
    api = SandboxAPI(CUSTOMERS)
    api.faults = Faults(failing_endpoints=("customers", "customer"), fail_status=status)
    install_client(SandboxTransport(api))


@pytest.mark.parametrize("status", [400, 401, 404, 429, 500, 503])
def test_api_failures_with_views_and_columns_answer_without_5xx(
    fiona, view_slug, install_client, status
):
    failing_client(install_client, status)
    client = strict(client_for(fiona))
    for query in path_queries(view_slug):
        get_all_ways(client, query)


def test_a_transport_error_with_views_and_columns(fiona, view_slug, install_client):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("down", request=request)

    install_client(httpx.MockTransport(refuse))
    client = strict(client_for(fiona))
    for query in path_queries(view_slug):
        get_all_ways(client, query)


def test_without_an_index(fiona, sandbox):
    slug = make_view(fiona, columns="name,billable")
    client = strict(client_for(fiona))
    for query in path_queries(slug):
        get_all_ways(client, query)


def test_posts_with_views_and_columns(fiona, view_slug, settings):
    client = strict(client_for(fiona))
    many = "\n".join(f"001A{n:014d}" for n in range(400))
    cols = {"columns": "name,cf.region", "view": view_slug}
    posts = [
        {**cols, "salesforce_account_ids": many},
        {**cols, "salesforce_account_ids": many, "limit": "abc"},
        {**cols, "q": "acme", "customer_ids": "x" * 50},
        {**cols},
    ]
    for data in posts:
        for headers in ({}, HTMX, RESTORE):
            response = client.post(LIST_URL, data, **headers)
            assert response.status_code < 500, (data.keys(), headers)
    # The day's allowance used up: the refusal, with columns and a view.
    settings.SAVED_SEARCHES_PER_DAY = 0
    for headers in ({}, HTMX, RESTORE):
        response = client.post(
            LIST_URL, {**cols, "salesforce_account_ids": many + "\n001B00000000000000"}, **headers
        )
        assert response.status_code < 500, headers
        assert "Search not stored" in text_of(response)


def test_the_index_button_for_htmx_and_not(db, indexed, monkeypatch):
    from django.contrib.auth.models import User

    from customers.index import refresh

    monkeypatch.setattr(refresh, "start_in_background", lambda: None)
    client = strict(client_for(User.objects.create_superuser("root")))
    response = client.post("/customers/index/sync/", **HTMX)
    body = text_of(response)
    assert response.status_code == 200 and body.lstrip().startswith('<div id="index-status"')
    assert "Index update started" in body and 'name="csrfmiddlewaretoken"' in body
    # Without htmx: back to the page, which says it once (a Django message, drawn by Jinja2).
    response = client.post("/customers/index/sync/")
    assert response.status_code == 303
    body = text_of(client.get(response["Location"]))
    assert body.count("Index update started") == 1
    assert "Index update started" not in text_of(client.get(LIST_URL))


# --- 1b. Any parameters, with the index built from hostile customers ---------------------------

HOSTILE_KEY = '"><img src=x onerror=alert("key")>'
HOSTILE_CUSTOMERS = [
    *CUSTOMERS,
    wire_customer(
        '<script>alert("name")</script>',
        key="hostile-1",
        external_id='"><svg/onload=alert("ext")>',
        ingest_aliases=["'><svg/onload=alert('alias')>", "javascript:alert(1)", "{{7*7}}"],
        customer_config={"salesforce_account_id": "001xx000003DHuz"},
        custom_fields={HOSTILE_KEY: '<img src=x onerror=alert("value")>', "region": "\u202eemea"},
        current_billable_status={"value": "billable", "effective_at": None},
    ),
    wire_customer(
        "Acme \x00 nul \ud7ff \U0001f680" + "e\u0301" * 300,
        key="hostile-2",
        ingest_aliases=[f"alias-{n}" for n in range(60)],
        custom_fields={"region": "emea", "note": "</textarea></td></tr></table><script>x</script>"},
    ),
]
REFLECTED = ("<script>alert", "<img src=x", "<svg/onload", "</textarea><script")


@pytest.fixture
def hostile_indexed(db, install_client) -> SandboxAPI:
    from customers import wiring
    from customers.index import sync as index_sync
    from customers.models import SyncRun

    api = SandboxAPI(HOSTILE_CUSTOMERS)
    install_client(SandboxTransport(api))
    run = index_sync.sync(wiring.get_client())
    assert run.outcome == SyncRun.Outcome.SUCCEEDED, run.error
    return api


def assert_escaped(response) -> str:
    assert response.status_code < 500
    body = text_of(response)
    for reflected in REFLECTED:
        assert reflected.lower() not in body.lower(), reflected
    problems = [p for p in markup_problems(response) if "inline <script>" not in p]
    assert not problems, problems
    return body


def test_hostile_customers_are_escaped_in_every_table(fiona, hostile_indexed):
    client = strict(client_for(fiona))
    hostile_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "hostile-1"))
    columns = "columns=" + quote(f"name,id,external_id,aliases,cf.{HOSTILE_KEY},cf.note,cf.region")
    for query in (
        "",
        "q=alert",
        "q=acme",
        columns,
        f"{columns}&q=alert",
        f"{columns}&customer_ids={hostile_id}",
        f"{columns}&salesforce_account_ids=001xx000003DHuz",
        "salesforce_account_ids=001xx000003DHuz",
        f"{columns}&only_archived=all",
    ):
        for headers in WAYS:
            body = assert_escaped(client.get(f"{LIST_URL}?{query}", **headers))
            if "acme" not in query:
                assert hostile_id in body, query


SLUGS: list[str] = []
params_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "acme", "alert", "juniper", "a0D30000001n7PiEAI", "001xx000003DHur", "emea",
            "region=emea", f"cf.{HOSTILE_KEY}", "name,id,cf.region", "true", "false", "all",
            "billable", "unbillable", "unset", "name", "-name", "created", "-updated", "pasted",
            "2020-01-01", "9999-12-31", "0", "-1", "99999999999999", "1e3", "\x00", "%",
            '"', "*", 'NEAR("a" "b")', "a OR b", "-x", "^", "(", ")", ":", "'", "\\", "\ufffd",
            str(uuid.uuid5(uuid.NAMESPACE_URL, "hostile-1")), XSS,
        ]
    ),
)  # fmt: skip
PARAM_NAMES = [
    "q", "only_archived", "billable", "limit", "sort", "order", "next_page", "prev", "page",
    "refresh", "search", "view", "columns", "customer_ids", "salesforce_account_ids",
    "ingest_alias", "created_from", "created_to", "updated_from", "updated_to",
    "custom_field", "no_salesforce_id",
]  # fmt: skip
fuzz_params = st.lists(st.tuples(st.sampled_from(PARAM_NAMES), params_text), max_size=7)


@pytest.fixture
def fuzz_client(fiona, hostile_indexed, postgres_rules) -> Client:
    SLUGS[:] = [
        make_view(fiona, name=XSS, columns=f"name,cf.{HOSTILE_KEY}", q="acme"),
        make_view(fiona, name="plain", shared=True, salesforce_account_ids="001xx000003DHur"),
    ]
    return strict(client_for(fiona))


def send(client, params: list, with_view: int | None, how: str):
    """The customers page asked with `params` (and the saved view `with_view`), as `how`
    says: a GET, an htmx GET, a history restore, a POST or an htmx POST."""
    if with_view is not None:
        params = [*params, ("view", SLUGS[with_view])]
    query = urlencode(params)
    headers = {"htmx": HTMX, "restore": RESTORE, "post-htmx": HTMX}.get(how, {})
    if how.startswith("post"):
        return client.post(
            LIST_URL, query, content_type="application/x-www-form-urlencoded", **headers
        )
    return client.get(f"{LIST_URL}?{query}", **headers)


@hypothesis_settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    params=fuzz_params,
    with_view=st.sampled_from([0, 1, None]),
    how=st.sampled_from(["get", "htmx", "restore", "post", "post-htmx"]),
)
def test_any_parameters_with_an_index_never_5xx_nor_reflect(fuzz_client, params, with_view, how):
    response = send(fuzz_client, params, with_view, how)
    assert_escaped(response)
    if response.status_code in (302, 303):
        assert_escaped(fuzz_client.get(response["Location"]))


# --- 1c. Every part of the match report at once, with and without columns ---------------------


@pytest.fixture
def report_sandbox(db, install_client) -> SandboxAPI:
    from customers.salesforce import to_18

    customers = [
        wire_customer(
            "Eighteen", customer_config={"salesforce_account_id": to_18("001A00000000001")}
        ),
        wire_customer("Shared one", customer_config={"salesforce_account_id": "001A00000000002"}),
        wire_customer(
            "Shared two",
            customer_config={"salesforce_account_id": "001A00000000002"},
            archived_at="2025-01-01T00:00:00Z",
        ),
        wire_customer(
            "Archived",
            customer_config={"salesforce_account_id": "001A00000000003"},
            archived_at="2025-01-01T00:00:00Z",
        ),
    ]
    api = SandboxAPI(customers)
    install_client(SandboxTransport(api))
    return api


def test_the_whole_match_report_with_views_and_columns(fiona, report_sandbox):
    pasted = "\n".join(
        ["001A00000000001", "001A00000000002", "001A00000000003", "001A00000000009"]
        + [f'junk-{n}"><b>' for n in range(15)]
        + ['junk-0"><b>'] * 3
    )
    slug = make_view(fiona, columns="name,salesforce")
    client = strict(client_for(fiona))
    for extra in ({}, {"columns": "name,salesforce,billable"}, {"view": slug, "columns": "id"}):
        for archived in ("false", "true"):
            query = urlencode(
                {"salesforce_account_ids": pasted, "only_archived": archived, **extra}
            )
            for headers in WAYS:
                response = client.get(f"{LIST_URL}?{query}", **headers)
                body = assert_escaped(response)
                assert 'data-unmatched-id="001A00000000009"' in body
                assert "<b>" not in body
                if archived == "false":
                    assert 'data-group="shared"' in body and 'data-group="matched-as"' in body


# --- 1d. Failures whose text comes from outside, with a view and columns -----------------------


@pytest.mark.parametrize("status", [400, 404, 422, 500])
def test_api_error_text_is_escaped_in_the_error_and_the_stale_notice(
    fiona, indexed, install_client, status
):
    slug = make_view(fiona, columns="name,id")

    def hostile(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"message": XSS, "error": XSS})

    install_client(httpx.MockTransport(hostile))
    client = strict(client_for(fiona))
    for query in (f"view={slug}&columns=name,id", "q=acme&columns=name", "q=acme", ""):
        for headers in WAYS:
            assert_escaped(client.get(f"{LIST_URL}?{query}", **headers))


def test_too_many_long_searches_at_once_with_a_view_and_columns(fiona, sandbox, settings):
    from customers import concurrency

    settings.EXPENSIVE_WORK_PER_USER = 1
    concurrency.acquire(fiona.pk)  # another tab's paste still running
    slug = make_view(fiona, columns="name,id")
    client = strict(client_for(fiona))
    ids = ",".join(active_ids_of(sandbox)[:3])
    for headers in WAYS:
        response = client.get(
            f"{LIST_URL}?customer_ids={ids}&view={slug}&columns=name,id", **headers
        )
        assert response.status_code == 200
        assert "Could not load customers" in text_of(response)


def active_ids_of(api: SandboxAPI) -> list[str]:
    return [c["id"] for c in api.customers if not c.get("archived_at")]


# --- 3. The page's contract, with chosen columns -----------------------------------------------

ROW = re.compile(r"<tr( [^>]*)?>")


def contract(body: str) -> tuple[list[str], int, int, int]:
    """(data-customer-id of each row, rows without it, rel=next links, rel=prev links)."""
    tbody = "".join(re.findall(r"<tbody[^>]*>(.*?)</tbody>", body, re.S))
    rows = ROW.findall(tbody)
    ids = re.findall(r'<tr[^>]*data-customer-id="([^"]+)"', tbody)
    return ids, len(rows) - len(ids), body.count('rel="next"'), body.count('rel="prev"')


def test_the_contract_holds_with_chosen_columns_and_a_view(fiona, sandbox):
    slug = make_view(fiona, columns="billable,cf.region")
    client = strict(client_for(fiona))
    base = f"{LIST_URL}?limit=10&view={slug}&columns=billable,cf.region"
    for headers in WAYS:
        body = text_of(client.get(base, **headers))
        ids, bare, next_links, prev_links = contract(body)
        assert len(ids) == 10 and bare == 0 and (next_links, prev_links) == (1, 0)
        next_url = re.search(r'<a rel="next" href="([^"]+)"', body)[1].replace("&amp;", "&")
        assert "columns=billable%2Ccf.region" in next_url and f"view={slug}" in next_url
        body = text_of(client.get(next_url, **headers))
        ids2, bare, next_links, prev_links = contract(body)
        assert len(ids2) == 10 and not set(ids) & set(ids2)
        assert bare == 0 and (next_links, prev_links) == (1, 1)


def test_unmatched_ids_keep_their_hook_with_chosen_columns(fiona, sandbox):
    client = strict(client_for(fiona))
    known = active_ids_of(sandbox)[:2]
    missing = str(uuid.UUID(int=99))
    query = urlencode({"customer_ids": "\n".join([*known, missing]), "columns": "billable"})
    for headers in WAYS:
        body = text_of(client.get(f"{LIST_URL}?{query}", **headers))
        ids, bare, _, _ = contract(body)
        assert sorted(ids) == sorted(known) and bare == 0
        assert re.findall(r'data-unmatched-id="([^"]+)"', body) == [missing]
        # The Matched as column comes with the pasted search, chosen columns or not.
        assert body.count('<td data-matched-as="') == 2


def test_matched_as_is_read_by_the_whole_id_not_the_shown_one(fiona, install_client):
    # Metronome's IDs are UUIDs, but the page caps any shown value at 120 characters: the
    # Matched as cell must still find its row by the whole ID, as the chosen table does.
    long_id = "c" * 130
    customer = wire_customer(
        "Long", key="long", id=long_id, customer_config={"salesforce_account_id": SALESFORCE}
    )
    install_client(SandboxTransport(SandboxAPI([customer])))
    client = strict(client_for(fiona))
    for extra in ("", "&columns=name,id"):
        body = text_of(client.get(f"{LIST_URL}?salesforce_account_ids={SALESFORCE}{extra}"))
        assert f'data-customer-id="{long_id}"' in body, extra
        assert f'<td data-matched-as="{SALESFORCE}">' in body, extra


def test_an_index_search_with_pasted_ids_counts_as_a_long_search(fiona, indexed, settings):
    # The pasted IDs' match report is as many Metronome calls with an index filter beside
    # them (All, a billable box, any word) as without: the per-person cap must hold too.
    from customers import concurrency

    settings.EXPENSIVE_WORK_PER_USER = 1
    concurrency.acquire(fiona.pk)  # another tab's paste still running
    client = strict(client_for(fiona))
    pasted = "\n".join(["001xx000003DHur", *(f"001A{n:014d}" for n in range(200))])
    for extra in ({}, {"only_archived": "all"}, {"billable": "billable"}):
        query = urlencode({"salesforce_account_ids": pasted, **extra})
        response = client.get(f"{LIST_URL}?{query}", **HTMX)
        assert "Could not load customers" in text_of(response), extra


# --- 1e. Valid-looking combinations, with faults injected at random -----------------------------

VALID_VALUES = {
    "q": ["acme", "juniper", "alert", "zzzz", "Acme Corp", "acne", "emea"],
    "only_archived": ["true", "false", "all", ""],
    "billable": ["billable", "unbillable", "unset"],
    "limit": ["1", "2", "10", "100"],
    "sort": ["name", "-name", "created", "-created", "updated", "-updated"],
    "order": ["", "pasted"],
    "page": ["1", "2", "3", "50"],
    "next_page": ["1", "2", "garbage"],
    "prev": ["", "1"],
    "refresh": ["true", "false"],
    "columns": ["name,id", "id,cf.region,billable", f"name,cf.{HOSTILE_KEY}", "archived", ""],
    "customer_ids": [
        str(uuid.uuid5(uuid.NAMESPACE_URL, "hostile-1")),
        str(uuid.UUID(int=5)),
        "not an id",
    ],
    "salesforce_account_ids": ["001xx000003DHur", "001xx000003DHuz\nA0D30000001N7PI", "x y z"],
    "ingest_alias": ["juniper-hr-1", "{{7*7}}"],
    "created_from": ["2020-01-01", "2030-01-01"],
    "updated_to": ["2019-01-01", "2026-01-01"],
    "custom_field": ["region=emea", f"{HOSTILE_KEY}=x", "note="],
    "no_salesforce_id": ["on", "false"],
    "search": ["0" * 32],
}
valid_params = st.lists(
    st.sampled_from(sorted(VALID_VALUES)).flatmap(
        lambda name: st.tuples(st.just(name), st.sampled_from(VALID_VALUES[name]))
    ),
    max_size=6,
)


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    params=valid_params,
    with_view=st.sampled_from([0, 1, None]),
    how=st.sampled_from(["get", "htmx", "restore", "post-htmx"]),
    failing=st.sampled_from([(), ("customers",), ("customer",), ("customers", "customer")]),
    status=st.sampled_from([400, 429, 503]),
)
def test_valid_looking_combinations_with_faults_never_5xx(
    fuzz_client, hostile_indexed, params, with_view, how, failing, status
):
    from django.core.cache import cache

    cache.clear()
    hostile_indexed.faults = Faults(failing_endpoints=failing, fail_status=status)
    try:
        assert_escaped(send(fuzz_client, params, with_view, how))
    finally:
        hostile_indexed.faults = Faults()


def walk(client: Client, url: str, headers: dict) -> list[tuple[list[str], int, int, int]]:
    """Every page from `url` on by its rel=next link: each page's contract."""
    pages = []
    while url and len(pages) < 10:
        body = text_of(client.get(url, **headers))
        pages.append(contract(body))
        found = re.search(r'<a rel="next" href="([^"]+)"', body)
        url = found[1].replace("&amp;", "&") if found else ""
    return pages


@pytest.mark.parametrize(
    "query",
    [
        "only_archived=all&limit=2&columns=billable,name",  # the index's pages
        "only_archived=all&limit=2&sort=-name&columns=name",
        "customer_ids={ids}&limit=2&columns=billable",  # a paste's pages (offset cursors)
        "customer_ids={ids}&limit=2&order=pasted",
        "limit=2&columns=id",  # Metronome's pages (cursors)
    ],
)
def test_every_page_keeps_the_hooks_with_chosen_columns(fiona, indexed, query):
    ids = quote(",".join(str(uuid.uuid5(uuid.NAMESPACE_URL, c["name"])) for c in CUSTOMERS[:5]))
    client = strict(client_for(fiona))
    for headers in ({}, HTMX):
        pages = walk(client, f"{LIST_URL}?{query.format(ids=ids)}", headers)
        assert len(pages) >= 3, query
        seen = [customer for ids_, *_ in pages for customer in ids_]
        assert len(seen) == len(set(seen)), "a customer shown twice"
        for number, (ids_, bare, next_links, prev_links) in enumerate(pages):
            assert ids_ and bare == 0
            assert next_links == (number < len(pages) - 1)
            assert prev_links == (number > 0)


def test_the_row_count_counts_the_exact_matches_shown_first(fiona, indexed, install_client):
    # A customer created since the last sync, searched by its exact ID: one row is shown,
    # so the count and the screen reader's announcement must not say "rows 0 to 0".
    from tests.factories import install_metronome

    new = wire_customer("Brand New", key="brand-new")
    install_metronome(install_client, [*CUSTOMERS, new])
    client = strict(client_for(fiona))
    for headers in WAYS:
        body = text_of(client.get(f"{LIST_URL}?q={new['id']}", **headers))
        assert contract(body)[0] == [new["id"]]
        count = " ".join(re.search(r'id="row-count"[^>]*>(.*?)<span', body, re.S)[1].split())
        assert count == "Rows 1–1 of 1"
        if headers == HTMX:
            assert "Showing rows 1 to 1." in body


def test_a_hostile_view_name_is_escaped_in_the_message_the_bar_and_the_list(fiona, indexed):
    client = strict(client_for(fiona))
    response = client.post(
        "/customers/v/new/", {"name": XSS, "shared": "on", "state": "q=acme&columns=name,id"}
    )
    assert response.status_code == 303
    response = client.get(response["Location"])
    assert response.status_code == 302  # the view's short URL opens the customers page
    url = response["Location"]
    for headers in WAYS:
        body = assert_escaped(client.get(url, **headers))
        assert XSS not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    # Another person sees it among the team's views, escaped too.
    sam = make_user("sam2", "Support")
    assert_escaped(strict(client_for(sam)).get(url))


def test_the_pages_forms_carry_a_working_csrf_token(fiona, sandbox):
    # CSRF checked as in production: the too-long search's form posts with its own token.
    client = Client(enforce_csrf_checks=True)
    client.force_login(fiona)
    many = "\n".join(f"001A{n:014d}" for n in range(400))
    for headers in WAYS:
        query = urlencode({"salesforce_account_ids": many})
        body = text_of(client.get(f"{LIST_URL}?{query}", **headers))
        form = re.search(r'<form method="post" action="/customers/"[^>]*>(.*?)</form>', body, re.S)
        assert form, headers
        fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form[1])
        assert any(name == "csrfmiddlewaretoken" and value for name, value in fields)
        data = [(name, value.replace("&#10;", "\n")) for name, value in fields]
        response = client.post(
            LIST_URL, urlencode(data), content_type="application/x-www-form-urlencoded"
        )
        assert response.status_code == 303, response.status_code
