"""The customer view through Django's test client: the full page, the htmx side panel and
its invoices region, the Close link's target, failures region by region, and who may see it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext

import httpx
import pytest
from django.contrib.auth.models import User
from django.utils.html import escape
from hypothesis import given
from hypothesis import strategies as st

from customers.metronome import CreditType, Invoice
from customers.sandbox import Faults, SandboxAPI, SandboxTransport
from customers.sandbox.invoices import generate_invoices
from customers.templatetags import invoice_format, region_format

pytestmark = pytest.mark.django_db

SANDBOX_SIZE = 300
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
TOKEN = "sk_live_detail_view_token_0123456789"


@pytest.fixture
def sandbox(install_sandbox) -> SandboxAPI:
    return install_sandbox(SANDBOX_SIZE, max_retries=0)


def customer_with(api: SandboxAPI, predicate) -> dict:
    return next(c for c in api.customers if predicate(c))


def with_invoices(api: SandboxAPI) -> dict:
    return customer_with(api, lambda c: len(generate_invoices(c)) > 14 and c["custom_fields"])


def invoice_ids(body: str) -> list[str]:
    return re.findall(r'data-invoice-id="([0-9a-f-]{36})"', body)


def test_the_full_page_shows_every_field_and_the_newest_invoices(support_client, sandbox, settings):
    settings.SALESFORCE_BASE_URL = "https://acme.lightning.force.com"
    customer = customer_with(
        sandbox,
        lambda c: (
            len(generate_invoices(c)) > 14
            and c["customer_config"]["salesforce_account_id"]
            and (c.get("current_billable_status") or {}).get("effective_at")
            and "notes" in c["custom_fields"]
        ),
    )
    response = support_client.get(f"/customers/{customer['id']}/")
    assert response.status_code == 200
    assert (
        response["Cache-Control"].startswith("max-age=0") or "no-cache" in response["Cache-Control"]
    )
    body = response.content.decode()

    assert "{{" not in body and "{%" not in body
    assert f'<h1 id="customer-name">{escape(customer["name"])}</h1>' in body
    assert f"Open {escape(customer['name'])} in Metronome" in body
    for alias in customer["ingest_aliases"]:
        assert f'data-copy="{escape(alias)}"' in body
    salesforce_id = customer["customer_config"]["salesforce_account_id"]
    assert f"https://acme.lightning.force.com/lightning/r/Account/{salesforce_id}/view" in body
    # Custom fields whole: no truncation, newlines kept for the stylesheet to show.
    for key, value in customer["custom_fields"].items():
        assert escape(key) in body and escape(value) in body
    status = customer["current_billable_status"]
    assert status["value"].capitalize() in body and "since <time" in body

    # The newest invoices first, as many as the view shows.
    newest = sorted(
        generate_invoices(customer),
        key=lambda i: (i.get("issued_at") or i["end_timestamp"], i["id"]),
        reverse=True,
    )
    assert invoice_ids(body) == [i["id"] for i in newest[:12]]
    assert "older invoices are in Metronome" in body
    assert 'hx-trigger="load"' not in body  # without JavaScript nothing is left to load


def test_usd_totals_are_dollars_and_other_credit_types_are_named(support_client, sandbox):
    usd = customer_with(
        sandbox,
        lambda c: any(
            i["credit_type"]["name"] == "USD (cents)" and i["total"] >= 100_000
            for i in generate_invoices(c)[-12:]
        ),
    )
    body = support_client.get(f"/customers/{usd['id']}/").content.decode()
    assert re.search(r'<td class="number">\$\d{1,3}(,\d{3})*\.\d\d</td>', body)

    credits = customer_with(
        sandbox,
        lambda c: any(i["credit_type"]["name"] == "Compute credits" for i in generate_invoices(c)),
    )
    body = support_client.get(f"/customers/{credits['id']}/").content.decode()
    assert re.search(r'<td class="number">[\d,.]+ Compute credits</td>', body)
    assert '<td class="number">$' not in body


def test_a_customer_without_invoices_says_so(support_client, sandbox):
    newest = sandbox.customers[-1]
    assert generate_invoices(newest) == []
    body = support_client.get(f"/customers/{newest['id']}/").content.decode()
    assert "No invoices yet." in body


def test_for_htmx_the_view_is_the_panel_with_its_invoices(support_client, sandbox):
    customer = with_invoices(sandbox)
    back = "/customers/?only_archived=false&limit=25"
    response = support_client.get(
        f"/customers/{customer['id']}/", {"back": back}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert response.status_code == 200 and response["Vary"] == "HX-Request, Cookie"
    assert body.lstrip().startswith('<aside id="customer-panel"')
    assert "<html" not in body and escape(customer["name"]) in body
    assert f'href="{escape(back)}" data-close-panel' in body
    assert len(invoice_ids(body)) == 12
    assert 'hx-trigger="load"' not in body  # every region came with the panel

    region = support_client.get(f"/customers/{customer['id']}/invoices/", HTTP_HX_REQUEST="true")
    region_body = region.content.decode()
    assert region_body.lstrip().startswith('<section id="invoices"')
    assert invoice_ids(region_body) == invoice_ids(body)


def test_a_history_restore_gets_the_whole_page(support_client, sandbox):
    customer = with_invoices(sandbox)
    body = support_client.get(
        f"/customers/{customer['id']}/",
        HTTP_HX_REQUEST="true",
        HTTP_HX_HISTORY_RESTORE_REQUEST="true",
    ).content.decode()
    assert "<html" in body and len(invoice_ids(body)) == 12


def test_opening_a_second_customer_from_the_panel_replaces_its_history_entry(
    support_client, sandbox
):
    first, second = sandbox.customers[0], sandbox.customers[1]
    from_list = support_client.get(
        f"/customers/{first['id']}/",
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="http://testserver/customers/?limit=25",
    )
    assert "HX-Replace-Url" not in from_list
    # The address names the list it was opened from: a reload keeps the way back.
    first_address = from_list["HX-Push-Url"]
    assert first_address == f"/customers/{first['id']}/?back=%2Fcustomers%2F%3Flimit%3D25"
    from_panel = support_client.get(
        f"/customers/{second['id']}/",
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL=f"http://testserver{first_address}",
    )
    assert "HX-Push-Url" not in from_panel
    second_address = from_panel["HX-Replace-Url"]
    assert second_address == f"/customers/{second['id']}/?back=%2Fcustomers%2F%3Flimit%3D25"
    reloaded = support_client.get(second_address).content.decode()
    assert 'href="/customers/?limit=25"' in reloaded


def test_a_search_too_long_to_carry_leaves_the_customers_links_short(support_client, sandbox):
    customer = sandbox.customers[0]
    long_list = "/customers/?customer_ids=" + "%E3%81%82" * 600  # 5,425 characters
    response = support_client.get(
        f"/customers/{customer['id']}/",
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL=f"http://testserver{long_list}",
    )
    body = response.content.decode()
    # Its address and region links lead back to the whole list, well within a request line;
    # Close still goes back to the search itself.
    assert response["HX-Push-Url"] == f"/customers/{customer['id']}/"
    assert max(len(link) for link in re.findall(r'hx-get="([^"]+)"', body)) < 200
    assert f'href="{escape(long_list)}" data-close-panel' in body


def test_a_customer_opened_from_the_plain_list_keeps_its_plain_address(support_client, sandbox):
    customer = sandbox.customers[0]
    response = support_client.get(
        f"/customers/{customer['id']}/",
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="http://testserver/customers/",
    )
    assert response["HX-Push-Url"] == f"/customers/{customer['id']}/"


@pytest.mark.parametrize(
    "back",
    [
        "https://evil.example/customers/",
        "//evil.example/customers/",
        "/admin/",
        "/customers/export.csv?x=1",
        "javascript:alert(1)",
        "/customers/../admin/",
    ],
)
def test_close_only_ever_leads_back_to_the_customers_list(support_client, sandbox, back):
    customer = sandbox.customers[0]
    body = support_client.get(
        f"/customers/{customer['id']}/", {"back": back}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert 'href="/customers/" data-close-panel' in body
    assert "evil.example" not in body and "javascript:" not in body


@pytest.mark.parametrize(
    "headers",
    [
        {"data": {"back": "http://["}},
        {"data": {"back": "/customers/?back=http://["}},
        {"HTTP_HX_REQUEST": "true", "HTTP_HX_CURRENT_URL": "http://["},
        {"HTTP_REFERER": "http://["},
        {
            "HTTP_HX_REQUEST": "true",
            # Another customer's address, its own way back no URL.
            "HTTP_HX_CURRENT_URL": f"http://testserver/customers/{UNKNOWN_ID}/?back=http://[",
        },
    ],
)
@pytest.mark.parametrize("path", ["", "invoices/", "contracts/"])
def test_a_where_from_that_is_no_url_leads_back_to_the_list_not_to_an_error(
    support_client, sandbox, headers, path
):
    customer = sandbox.customers[0]
    response = support_client.get(f"/customers/{customer['id']}/{path}", **headers)
    # A region asked for outside htmx sends the browser to the whole customer page.
    assert response.status_code == (302 if path and "HTTP_HX_REQUEST" not in headers else 200)
    if not path:  # the customer (page or panel): its way back is the list
        way_back = r'href="/customers/(\?[^"]*)?"( data-close-panel|>← Customers)'
        assert re.search(way_back, response.content.decode())


def test_the_list_links_each_name_to_its_customer_view_opened_as_the_panel(support_client, sandbox):
    body = support_client.get("/customers/?limit=10").content.decode()
    first = sandbox.customers[0]
    assert f'<a href="/customers/{first["id"]}/">' in body
    # One boost for the table's local links (htmx leaves target="_blank" links alone).
    assert '<tbody hx-boost="true" hx-target="#customer-panel"' in body
    assert '<div id="customer-panel"></div>' in body


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_HX_REQUEST": "true", "HTTP_HX_CURRENT_URL": "http://testserver/customers/?limit=10"},
        {"HTTP_REFERER": "http://testserver/customers/?limit=10"},
    ],
    ids=["htmx-current-url", "referrer"],
)
def test_the_customer_view_leads_back_to_the_list_it_was_opened_from(
    support_client, sandbox, headers
):
    first = sandbox.customers[0]
    body = support_client.get(f"/customers/{first['id']}/", **headers).content.decode()
    assert 'href="/customers/?limit=10"' in body


def test_a_referrer_from_another_site_is_no_way_back(support_client, sandbox):
    first = sandbox.customers[0]
    body = support_client.get(
        f"/customers/{first['id']}/", HTTP_REFERER="https://evil.example/customers/?x=1"
    ).content.decode()
    assert "evil.example" not in body
    assert 'href="/customers/"' in body


def test_an_unknown_customer_is_a_404_page_that_says_so(support_client, sandbox):
    response = support_client.get(f"/customers/{UNKNOWN_ID}/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Customer not found" in body and UNKNOWN_ID in body
    # In the panel it is a 200 fragment, since htmx swaps only successful answers.
    panel = support_client.get(f"/customers/{UNKNOWN_ID}/", HTTP_HX_REQUEST="true")
    assert panel.status_code == 200 and "Customer not found" in panel.content.decode()


def test_a_malformed_id_never_reaches_metronome(support_client, sandbox):
    before = sandbox.request_count
    assert support_client.get("/customers/not-a-uuid/").status_code == 404
    assert sandbox.request_count == before


def test_a_user_without_the_permission_gets_403(client, sandbox):
    client.force_login(User.objects.create_user("nobody"))
    customer = sandbox.customers[0]
    assert client.get(f"/customers/{customer['id']}/").status_code == 403
    assert client.get(f"/customers/{customer['id']}/invoices/").status_code == 403
    assert sandbox.request_count == 0


def test_the_invoices_region_without_htmx_redirects_to_the_customer_view(support_client, sandbox):
    customer = sandbox.customers[0]
    response = support_client.get(f"/customers/{customer['id']}/invoices/?back=/customers/")
    assert response.status_code == 302
    assert response.url == f"/customers/{customer['id']}/?back=%2Fcustomers%2F"


def test_failed_invoices_show_in_their_own_region_while_the_customer_still_shows(
    support_client, sandbox
):
    customer = with_invoices(sandbox)
    # The page's calls go side by side, in no fixed order: the invoices endpoint fails alone.
    sandbox.faults = Faults(failing_endpoints=("invoices",), fail_status=503)
    body = support_client.get(f"/customers/{customer['id']}/").content.decode()
    assert escape(customer["name"]) in body and "Could not load invoices." in body
    assert "Could not load this customer" not in body
    region = re.search(r'<section id="invoices".*?</section>', body, re.S).group(0)
    assert "Retry" in region and 'hx-get="/customers/' in region

    sandbox.faults = Faults()
    retried = support_client.get(
        f"/customers/{customer['id']}/invoices/", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert len(invoice_ids(retried)) == 12


def test_a_failed_customer_shows_its_own_error_with_retry(support_client, sandbox):
    sandbox.faults = Faults(fail_every=1, fail_status=503)
    customer = sandbox.customers[0]
    response = support_client.get(f"/customers/{customer['id']}/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "Could not load this customer." in body and "Retry" in body
    # Every other endpoint failed too: each region says so in its own place, with a retry.
    assert "Could not load invoices." in body


def test_malformed_invoices_are_a_message_not_a_500(support_client, install_client):
    customer = SandboxAPI(5).customers[0]

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/invoices"):
            return httpx.Response(200, json={"data": [{"id": 5}], "next_page": None})
        return httpx.Response(200, json={"data": customer})

    install_client(httpx.MockTransport(answer))
    response = support_client.get(f"/customers/{customer['id']}/")
    assert response.status_code == 200
    body = response.content.decode()
    # Left out and counted, as every list of the customer view does: no invoice to show.
    assert "1 of the invoices Metronome sent could not be read and is not shown." in body
    assert "No invoices yet" not in body


def test_the_token_never_reaches_the_page(support_client, install_client):
    customer = SandboxAPI(5).customers[0]

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/invoices"):
            return httpx.Response(400, json={"message": f"bad token {TOKEN} in {request.url}"})
        return httpx.Response(200, json={"data": customer})

    install_client(httpx.MockTransport(answer), token=TOKEN)
    for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
        body = support_client.get(f"/customers/{customer['id']}/", **headers).content.decode()
        assert TOKEN not in body
    region = support_client.get(f"/customers/{customer['id']}/invoices/", HTTP_HX_REQUEST="true")
    text = region.content.decode()
    assert "Metronome refused the request as not valid (HTTP 400)" in text
    assert TOKEN not in text and "bad token" not in text


def test_a_customer_whose_fields_echo_the_token_is_not_shown(support_client, install_client):
    customer = dict(SandboxAPI(5).customers[0])
    customer["custom_fields"] = {"debug": f"Authorization: Bearer {TOKEN}"}

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/invoices"):
            return httpx.Response(200, json={"data": [], "next_page": None})
        return httpx.Response(200, json={"data": customer})

    install_client(httpx.MockTransport(answer), token=TOKEN)
    body = support_client.get(f"/customers/{customer['id']}/").content.decode()
    assert TOKEN not in body
    assert "contained the dashboard&#x27;s API token, so it was not shown" in body


# --- How amounts and periods are written -------------------------------------------------------

USD = CreditType(id="2714e483-4ff1-48e4-9e25-ac732e8f24f2", name="USD (cents)")


@pytest.mark.parametrize(
    ("total", "credit_type", "expected"),
    [
        (123456.5, USD, "$1,234.57"),
        (0, USD, "$0.00"),
        (-2500, USD, "\u2212$25.00"),
        (12_000_000, USD, "$120,000.00"),
        (12345.5, CreditType(id="x", name="Compute credits"), "12,345.5 Compute credits"),
        (100, CreditType(id="x", name="EUR (cents)"), "100 EUR (cents)"),
        # Absurd but finite totals from a broken API still render (they raised a 500).
        (1e28, USD, f"${10**26:,}.00"),
        (-1e30, CreditType(id="x", name="Credits"), f"\u2212{10**30:,} Credits"),
    ],
)
def test_amounts_are_dollars_only_for_usd_cents(total, credit_type, expected):
    assert invoice_format.amount(total, credit_type) == expected


def _invoice(start: datetime | None, end: datetime | None) -> Invoice:
    return Invoice(
        id="i",
        customer_id="c",
        status="FINALIZED",
        type="USAGE",
        total=0,
        credit_type=USD,
        line_items=(),
        start_timestamp=start,
        end_timestamp=end,
    )


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC), "Oct 2026"),
        (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC), "Dec 2026"),
        (
            datetime(2026, 10, 14, tzinfo=UTC),
            datetime(2026, 11, 1, tzinfo=UTC),
            "14 Oct 2026 – 31 Oct 2026",
        ),
        (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 2, tzinfo=UTC), "1 Oct 2026"),
        (None, None, ""),
    ],
)
def test_billing_periods_read_as_months_or_inclusive_days(start, end, expected):
    assert invoice_format.billing_period(_invoice(start, end)) == expected


def test_wire_codes_read_as_words():
    assert invoice_format.wire_label("PAYMENT_FAILED") == "Payment failed"


def test_a_hostile_customer_cannot_blow_up_the_customer_view(support_client, install_client):
    customer = dict(SandboxAPI(1).customers[0])
    customer.update(
        name="N" * 2_000_000,
        ingest_aliases=[f"alias-{i}-" + "a" * 1_000 for i in range(2_000)],
        custom_fields={f"field-{i}": "v" * 5_000 for i in range(1_000)},
    )

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/invoices"):
            return httpx.Response(200, json={"data": [], "next_page": None})
        return httpx.Response(200, json={"data": customer})

    install_client(httpx.MockTransport(answer))
    response = support_client.get(f"/customers/{customer['id']}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert len(body) < 2_500_000  # the answer was about 12 MB
    assert "1,995,000 more characters in the CSV" in body
    assert "and 1800 more (in the CSV)" in body
    assert "and 800 more" in body


def test_a_salesforce_id_from_metronome_cannot_walk_the_orgs_paths(
    support_client, install_client, settings
):
    settings.SALESFORCE_BASE_URL = "https://acme.lightning.force.com"
    customer = dict(SandboxAPI(1).customers[0])
    customer["customer_config"] = {"salesforce_account_id": "../../../../secur/logout.jsp?x=1"}

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/invoices"):
            return httpx.Response(200, json={"data": [], "next_page": None})
        return httpx.Response(200, json={"data": customer})

    install_client(httpx.MockTransport(answer))
    body = support_client.get(f"/customers/{customer['id']}/").content.decode()
    links = re.findall(r'href="(https://acme\.lightning\.force\.com[^"]*)"', body)
    assert links == [
        "https://acme.lightning.force.com/lightning/r/Account/"
        "..%2F..%2F..%2F..%2Fsecur%2Flogout.jsp%3Fx%3D1/view"
    ]


def test_an_invoice_list_longer_than_asked_for_is_refused(support_client, install_client):
    customer = dict(SandboxAPI(1).customers[0])
    invoice = next(iter(generate_invoices(customer)), None)
    assert invoice is not None

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/invoices"):
            return httpx.Response(200, json={"data": [invoice] * 3_000, "next_page": None})
        return httpx.Response(200, json={"data": customer})

    install_client(httpx.MockTransport(answer))
    body = support_client.get(f"/customers/{customer['id']}/").content.decode()
    assert "Could not load invoices." in body
    assert "3,000 invoices for a page of 12" in body


def test_numbers_past_what_a_float_holds_are_unreadable_not_an_error(
    support_client, install_client
):
    # JSON allows any integer: 10**400 made float() raise OverflowError, a 500 on the
    # customer (an invoice's total) and on the invoice (a line item's quantity).
    api = SandboxAPI(SANDBOX_SIZE)
    customer = with_invoices(api)
    sandbox = SandboxTransport(api)

    def huge(request: httpx.Request) -> httpx.Response:
        response = sandbox.handle_request(request)
        if not request.url.path.endswith("/invoices") and "/invoices/" not in request.url.path:
            return response
        body = json.loads(response.read())
        invoices = body["data"] if isinstance(body["data"], list) else [body["data"]]
        for invoice in invoices:
            invoice["total"] = 10**400
            for item in invoice.get("line_items", []):
                item["quantity"] = 10**400
        return httpx.Response(response.status_code, json=body, request=request)

    install_client(httpx.MockTransport(huge), max_retries=0)
    invoice_id = generate_invoices(customer)[0]["id"]

    assert support_client.get(f"/customers/{customer['id']}/").status_code == 200
    page = support_client.get(f"/customers/{customer['id']}/invoices/{invoice_id}/")
    assert page.status_code == 200


@pytest.mark.parametrize("quantity", [1e26, 1.7e308, -1e30])
def test_an_invoice_with_a_huge_line_item_quantity_shows_it(
    support_client, install_client, quantity
):
    # Metronome's answers are untrusted: a quantity past Decimal's 28 digits made the
    # invoice page answer 500.
    api = SandboxAPI(SANDBOX_SIZE)
    customer = with_invoices(api)
    sandbox = SandboxTransport(api)

    def inflated(request: httpx.Request) -> httpx.Response:
        response = sandbox.handle_request(request)
        if "/invoices/" not in request.url.path:
            return response
        body = json.loads(response.read())
        for item in body["data"]["line_items"]:
            item["quantity"] = quantity
        return httpx.Response(response.status_code, json=body, request=request)

    install_client(httpx.MockTransport(inflated), max_retries=0)
    invoice_id = generate_invoices(customer)[0]["id"]

    page = support_client.get(f"/customers/{customer['id']}/invoices/{invoice_id}/")
    row = support_client.get(
        f"/customers/{customer['id']}/invoices/{invoice_id}/", HTTP_HX_REQUEST="true"
    )

    assert page.status_code == row.status_code == 200
    shown = region_format.number(quantity)
    assert len(shown) > 30 and shown in page.content.decode()


def test_a_period_cell_breaks_only_after_its_dash():
    assert invoice_format.period_cell("14 Oct 2026 – 31 Oct 2026") == (
        '<span class="nowrap">14 Oct 2026</span> – <span class="nowrap">31 Oct 2026</span>'
    )
    escaped = '<span class="nowrap">Oct &lt;2026&gt;</span>'
    assert invoice_format.period_cell("Oct <2026>") == escaped


def _number_to_the_cent_in_any_precision(value: float) -> str:
    """`region_format.number` as it was before its fast path: every value in a 400-digit
    context."""
    with localcontext() as context:
        context.prec = 400
        rounded = Decimal(repr(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    text = f"{abs(rounded):,.2f}".rstrip("0").rstrip(".")
    return f"{invoice_format.MINUS if rounded < 0 else ''}{text}"


@given(
    st.one_of(
        st.floats(allow_nan=False, allow_infinity=False),
        st.floats(min_value=-1e25, max_value=1e25),
        st.sampled_from([0.125, 0.005, -0.005, 2.675, 9.999999999999999e23, 1e24, -1e24]),
        # Whole numbers, written without a Decimal below 2 ** 53, and on either side of it.
        st.integers(min_value=-(2**60), max_value=2**60).map(float),
        st.integers(min_value=-(2**60), max_value=2**60),  # a sum of no values is 0, an int
        st.sampled_from([0.0, -0.0, -3.0, 2.0**53 - 1, 2.0**53, -(2.0**53), 2.0**53 + 2]),
    )
)
def test_a_number_is_rounded_the_same_with_or_without_the_wide_context(value):
    # The usual values skip the 400-digit context (a usage chart writes 60 numbers a
    # metric), and whole ones the Decimal too; neither cut-over may change a digit.
    assert region_format.number(value) == _number_to_the_cent_in_any_precision(value)


def test_a_usage_day_is_written_in_english_from_a_table():
    days = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=n) for n in range(800)]
    assert [region_format.short_day(day) for day in days] == [
        f"{day:%a} {day.day} {day:%b}"
        for day in days  # the C locale's names, as before
    ]
