"""One invoice's line items on demand, and its PDF: streamed through the dashboard only for
those who may export, checked before a byte is passed on, never cached, never with the
token."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from django.utils.html import escape

from customers import metronome
from customers.metronome import MalformedResponse, MetronomeClient, invoice_pdf
from customers.sandbox import SANDBOX_TOKEN, SandboxAPI, SandboxTransport

pytestmark = pytest.mark.django_db

HEADERS = {"authorization": f"Bearer {SANDBOX_TOKEN}"}
TOKEN = "sk_live_pdf_view_token_0123456789"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def sandbox(install_client) -> SandboxAPI:
    api = SandboxAPI(200)
    install_client(SandboxTransport(api), max_retries=0)
    return api


def an_invoice(api: SandboxAPI) -> tuple[dict, dict]:
    for position, customer in enumerate(api.customers):
        invoices = api._invoices_of(position)
        if len(invoices) > 3:
            return dict(customer), dict(invoices[-2])
    raise AssertionError("no customer with invoices")


def test_line_items_come_on_demand_for_htmx_and_as_a_page_without_it(support_client, sandbox):
    customer, invoice = an_invoice(sandbox)
    page = support_client.get(f"/customers/{customer['id']}/").content.decode()
    link = re.search(
        rf'hx-get="(/customers/{customer["id"]}/invoices/{invoice["id"]}/[^"]*)"', page
    ).group(1)
    assert f'hx-target="#lines-{invoice["id"]}"' in page
    assert f'<tr id="lines-{invoice["id"]}" class="invoice-lines" hidden></tr>' in page

    row = support_client.get(link.replace("&amp;", "&"), HTTP_HX_REQUEST="true")
    body = row.content.decode().strip()
    assert body.startswith(f'<tr id="lines-{invoice["id"]}" class="invoice-lines">')
    for item in invoice["line_items"]:
        assert item["name"] in body
    whole = support_client.get(link.replace("&amp;", "&")).content.decode()
    assert "<html" in whole and all(i["name"] in whole for i in invoice["line_items"])


def test_an_invoice_opened_from_a_pasted_link_names_its_customer(support_client, sandbox):
    customer, invoice = an_invoice(sandbox)
    url = f"/customers/{customer['id']}/invoices/{invoice['id']}/"

    body = support_client.get(url).content.decode()
    name = escape(customer["name"])
    of = rf'<p class="invoice-of">For <a href="/customers/{customer["id"]}/[^"]*">([^<]*)</a></p>'
    assert re.search(of, body)[1] == name
    assert f"· {name} · Metronome customers</title>" in body
    # The line items' row for htmx reads no customer: the customer view around it has one.
    before = sandbox.request_count
    support_client.get(url, HTTP_HX_REQUEST="true")
    assert sandbox.request_count - before == 1


def test_an_invoice_page_goes_without_the_name_when_the_customer_cannot_be_read(
    support_client, install_client
):
    api = SandboxAPI(200)
    customer, invoice = an_invoice(api)
    transport = SandboxTransport(api)

    def answer(request):
        if request.url.path == f"/v1/customers/{customer['id']}":
            return httpx.Response(500, json={"message": "down"})
        return transport.handle_request(request)

    install_client(httpx.MockTransport(answer), max_retries=0)
    response = support_client.get(f"/customers/{customer['id']}/invoices/{invoice['id']}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "← Customer</a>" in body and "invoice-of" not in body
    assert all(escape(item["name"]) in body for item in invoice["line_items"])


def test_an_unknown_invoice_is_a_404_page_that_says_so(support_client, sandbox):
    customer = sandbox.customers[0]
    response = support_client.get(f"/customers/{customer['id']}/invoices/{UNKNOWN_ID}/")
    assert response.status_code == 404
    assert "Metronome has no invoice" in response.content.decode()


# --- The PDF ---------------------------------------------------------------------------------


def test_finance_downloads_the_pdf_streamed_unstored_and_safely_named(finance_client, sandbox):
    customer, invoice = an_invoice(sandbox)
    page = finance_client.get(f"/customers/{customer['id']}/").content.decode()
    url = f"/customers/{customer['id']}/invoices/{invoice['id']}/pdf"
    # A plain link: a PDF that cannot be had shows its page saying why (`download` would
    # make the browser drop that page).
    assert f'href="{url}">PDF' in page

    response = finance_client.get(url)
    assert response.status_code == 200 and response.streaming
    pdf = b"".join(response.streaming_content)
    path = f"/v1/customers/{customer['id']}/invoices/{invoice['id']}/pdf"
    assert pdf == sandbox.handle("GET", path, "", HEADERS)[2]
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="invoice-{invoice["id"]}.pdf"'
    assert "no-store" in response["Cache-Control"]
    assert response["X-Content-Type-Options"] == "nosniff"


def test_support_sees_no_pdf_link_and_the_pdf_refuses_them(support_client, sandbox):
    customer, invoice = an_invoice(sandbox)
    page = support_client.get(f"/customers/{customer['id']}/").content.decode()
    assert "/pdf" not in page
    before = sandbox.request_count
    response = support_client.get(f"/customers/{customer['id']}/invoices/{invoice['id']}/pdf")
    assert response.status_code == 403
    assert sandbox.request_count == before  # refused before Metronome is asked


def test_an_anonymous_visitor_is_sent_to_log_in(client, sandbox):
    customer, invoice = an_invoice(sandbox)
    response = client.get(f"/customers/{customer['id']}/invoices/{invoice['id']}/pdf")
    assert response.status_code in (302, 403)
    assert not getattr(response, "streaming", False)


def _pdf_answer(install_client, response: httpx.Response, token: str = SANDBOX_TOKEN) -> None:
    install_client(httpx.MockTransport(lambda request: response), token=token, max_retries=0)


def test_what_is_not_a_pdf_is_not_passed_on(finance_client, install_client):
    _pdf_answer(
        install_client,
        httpx.Response(200, headers={"content-type": "text/html"}, content=b"<script>x</script>"),
    )
    response = finance_client.get(f"/customers/{UNKNOWN_ID}/invoices/{UNKNOWN_ID}/pdf")
    assert response.status_code == 502 and not response.streaming
    body = response.content.decode()
    assert "did not send a PDF" in body and "<script>x" not in body


def test_a_pdf_content_type_without_a_pdf_inside_is_refused(finance_client, install_client):
    _pdf_answer(
        install_client,
        httpx.Response(200, headers={"content-type": "application/pdf"}, content=b"MZ\x90\x00"),
    )
    response = finance_client.get(f"/customers/{UNKNOWN_ID}/invoices/{UNKNOWN_ID}/pdf")
    assert response.status_code == 502


def test_a_declared_size_over_the_cap_is_refused_before_reading(finance_client, install_client):
    too_big = str(invoice_pdf.MAX_PDF_BYTES + 1)
    _pdf_answer(
        install_client,
        httpx.Response(
            200,
            headers={"content-type": "application/pdf", "content-length": too_big},
            content=b"%PDF-1.4",
        ),
    )
    response = finance_client.get(f"/customers/{UNKNOWN_ID}/invoices/{UNKNOWN_ID}/pdf")
    assert response.status_code == 502 and "larger than" in response.content.decode()


def test_a_pdf_that_grows_past_the_cap_while_streaming_stops() -> None:
    def chunks():
        yield b"%PDF-1.4\n"
        while True:
            yield b"x" * 1024

    transport = httpx.MockTransport(
        lambda request: httpx.Response(
            200, headers={"content-type": "application/pdf"}, content=chunks()
        )
    )
    client = MetronomeClient(base_url="http://m.test", bearer_token="t", transport=transport)
    pdf = client.open_invoice_pdf("c", "i", max_bytes=10_000)
    received = 0
    with pytest.raises(MalformedResponse):
        for chunk in pdf.chunks():
            received += len(chunk)
    assert received <= 10_000
    client.close()


def test_a_pdf_that_holds_the_token_stops_before_the_chunk_that_completes_it() -> None:
    half = len(TOKEN) // 2
    pieces = [b"%PDF-1.4\n", b"(Bearer " + TOKEN[:half].upper().encode(), TOKEN[half:].encode()]
    transport = httpx.MockTransport(
        lambda request: httpx.Response(
            200, headers={"content-type": "application/pdf"}, content=iter(pieces)
        )
    )
    client = MetronomeClient(base_url="http://m.test", bearer_token=TOKEN, transport=transport)
    pdf = client.open_invoice_pdf("c", "i")
    sent = b""
    with pytest.raises(MalformedResponse, match="contained the API token"):
        for chunk in pdf.chunks():
            sent += chunk
    assert TOKEN.encode().lower() not in sent.lower()
    client.close()


def test_a_huge_error_body_is_read_only_as_far_as_its_message_needs() -> None:
    # A 400 with a 13 MB body (as good as endless): reading it whole held a worker's memory
    # and time for as long as the server cared to send (3 GB in an attack).
    sent = 0

    def huge():
        nonlocal sent
        yield b'{"message": "no such invoice"'
        for _ in range(200):
            sent += 1
            yield b" " * 65536

    transport = httpx.MockTransport(lambda request: httpx.Response(400, content=huge()))
    client = MetronomeClient(base_url="http://m.test", bearer_token="t", transport=transport)
    with pytest.raises(metronome.BadRequest):
        client.open_invoice_pdf("c", "i")
    assert sent <= 1
    client.close()


def test_the_token_never_reaches_the_browser(finance_client, install_client):
    message = {"message": f"token {TOKEN} is not allowed to read this invoice"}
    _pdf_answer(install_client, httpx.Response(400, json=message), token=TOKEN)
    response = finance_client.get(f"/customers/{UNKNOWN_ID}/invoices/{UNKNOWN_ID}/pdf")
    body = response.content.decode()
    assert TOKEN not in body and TOKEN not in json.dumps(dict(response.headers))
    assert "Metronome refused the request as not valid" in body  # our words, never its message


def test_a_missing_invoice_pdf_is_a_404(finance_client, sandbox):
    customer = sandbox.customers[0]
    response = finance_client.get(f"/customers/{customer['id']}/invoices/{UNKNOWN_ID}/pdf")
    assert response.status_code == 404
    assert "Metronome has no invoice" in response.content.decode()
