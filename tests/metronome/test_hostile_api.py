"""Metronome's answers are untrusted input: a broken or hostile API must never make the list
page a 500, make it hang, loop, or show what was not asked for, and never make the CSV export
a file that looks complete but is not. One test per hostile answer, on the page and on the
export; every fake answers over httpx (a MockTransport, or a real socket for the drip-feed).
"""

from __future__ import annotations

import base64
import html
import json
import logging
import socket
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from customers import metronome, wiring
from customers.index import sync as index_sync
from customers.metronome.redaction import WITHHELD, mentions_token
from customers.models import ExportAudit

pytestmark = pytest.mark.django_db

LIST_URL = "/customers/"
EXPORT_URL = "/customers/export.csv"
TOKEN = "tok_live_HOSTILE_4f1e"
COULD_NOT_LOAD = "Could not load customers."


def wire(n: int, **fields: object) -> dict[str, object]:
    customer: dict[str, object] = {
        "id": str(uuid.UUID(int=n)),
        "name": f"Customer {n}",
        "external_id": f"ext-{n}",
        "ingest_aliases": [f"ext-{n}"],
        "custom_fields": {},
        "customer_config": {"salesforce_account_id": None},
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-02T00:00:00Z",
    }
    customer.update(fields)
    return customer


def body(customers: list[dict[str, object]], next_page: str | None = None) -> bytes:
    return json.dumps({"data": customers, "next_page": next_page}).encode()


def pages_by_cursor(pages: dict[str | None, bytes]) -> httpx.MockTransport:
    """Metronome answering each cursor (None for the first page) with fixed bytes."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=pages[request.url.params.get("next_page")])

    return httpx.MockTransport(answer)


def page_text(client) -> str:
    response = client.get(LIST_URL)
    assert response.status_code == 200
    return response.content.decode()


def export_fails_before_the_first_byte(client, message: str) -> ExportAudit:
    response = client.get(EXPORT_URL)
    assert response.status_code == 502
    assert not response.streaming
    assert message in response.content.decode()
    audit = ExportAudit.objects.get()
    assert (audit.outcome, audit.rows_written) == (ExportAudit.Outcome.FAILED, 0)
    assert message in audit.error
    return audit


def export_aborts_mid_stream(client) -> tuple[bytes, ExportAudit]:
    """The stream raises before its end (the server then drops the connection without the
    final chunk): the download is visibly failed, never a clean file."""
    response = client.get(EXPORT_URL)
    assert response.status_code == 200
    received = []
    with pytest.raises(metronome.MetronomeError):
        for chunk in response.streaming_content:
            received.append(chunk)
    audit = ExportAudit.objects.get()
    assert audit.outcome == ExportAudit.Outcome.FAILED
    return b"".join(received), audit


def csv_ids(content: bytes) -> list[str]:
    lines = content.decode("utf-8-sig").split("\r\n")[1:]
    return [line.split(",", 1)[0] for line in lines if line]


# --- A lone surrogate --------------------------------------------------------------------


def lone_surrogate() -> httpx.MockTransport:
    # As Metronome would escape it: valid JSON, but no UTF-8 page or file can hold it.
    raw = body([wire(1, name="PLACEHOLDER")]).replace(b"PLACEHOLDER", b"Bad \\ud800 name")
    return pages_by_cursor({None: raw})


def test_a_lone_surrogate_in_a_name_shows_as_a_replacement_character(
    finance_client, install_client
):
    install_client(lone_surrogate())
    assert "Bad \ufffd name" in page_text(finance_client)


def test_a_lone_surrogate_in_a_name_is_exported_as_a_replacement_character(
    finance_client, install_client
):
    install_client(lone_surrogate())
    response = finance_client.get(EXPORT_URL)
    content = b"".join(response.streaming_content)
    assert "Bad \ufffd name".encode() in content
    assert ExportAudit.objects.get().outcome == ExportAudit.Outcome.COMPLETE


# --- Deeply nested JSON ------------------------------------------------------------------


def deep_json() -> httpx.MockTransport:
    return pages_by_cursor({None: b'{"data": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"})


def test_deeply_nested_json_is_an_unreadable_answer_on_the_page(finance_client, install_client):
    install_client(deep_json())
    text = page_text(finance_client)
    assert COULD_NOT_LOAD in text and "could not read" in text


def test_deeply_nested_json_fails_the_export_before_its_first_byte(finance_client, install_client):
    install_client(deep_json())
    export_fails_before_the_first_byte(finance_client, "could not read")


# --- An API that ignores `limit` ---------------------------------------------------------


def ignores_limit() -> httpx.MockTransport:
    return pages_by_cursor({None: body([wire(n) for n in range(1, 20_001)])})


def test_an_api_ignoring_limit_renders_no_rows_it_was_not_asked_for(finance_client, install_client):
    install_client(ignores_limit())
    response = finance_client.get(f"{LIST_URL}?limit=50")
    text = response.content.decode()
    assert "20,000 customers for a page of 50" in text
    assert "<tr data-customer-id=" not in text
    assert len(response.content) < 200_000


def test_an_api_ignoring_limit_fails_the_export(finance_client, install_client):
    install_client(ignores_limit())
    export_fails_before_the_first_byte(finance_client, "20,000 customers for a page of 100")


# --- A 20 MB field -------------------------------------------------------------------------


def huge_field() -> httpx.MockTransport:
    return pages_by_cursor({None: body([wire(1, name="x" * (20 * 1024 * 1024))])})


def test_a_20_mb_field_is_refused_not_rendered(finance_client, install_client):
    install_client(huge_field())
    response = finance_client.get(LIST_URL)
    assert "larger than 16 MB" in response.content.decode()
    assert len(response.content) < 200_000


def test_a_20_mb_field_fails_the_export(finance_client, install_client):
    install_client(huge_field())
    export_fails_before_the_first_byte(finance_client, "larger than 16 MB")


# --- Cursor cycles and repeated rows ------------------------------------------------------


def cursor_cycle() -> httpx.MockTransport:
    # a -> b -> a: page "a" again would repeat its rows for ever.
    return pages_by_cursor(
        {
            None: body([wire(1), wire(2)], "a"),
            "a": body([wire(3), wire(4)], "b"),
            "b": body([wire(5), wire(6)], "a"),
        }
    )


def test_a_cursor_cycle_aborts_the_export_with_each_row_written_once(
    finance_client, install_client
):
    install_client(cursor_cycle())
    content, audit = export_aborts_mid_stream(finance_client)
    ids = csv_ids(content)
    assert len(ids) == len(set(ids)) <= 6
    assert "cursor it had sent before" in audit.error
    assert audit.rows_written == len(ids)


def same_rows_under_new_cursors() -> httpx.MockTransport:
    counter = iter(range(1, 10_000))

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body([wire(1), wire(2)], f"c{next(counter)}"))

    return httpx.MockTransport(answer)


def test_new_cursors_that_keep_returning_the_same_rows_abort_the_export(
    finance_client, install_client
):
    install_client(same_rows_under_new_cursors())
    content, audit = export_aborts_mid_stream(finance_client)
    assert sorted(csv_ids(content)) == [str(uuid.UUID(int=1)), str(uuid.UUID(int=2))]
    assert "already sent" in audit.error


def test_a_row_repeated_on_page_two_is_exported_once_and_the_file_is_complete(
    finance_client, install_client
):
    install_client(
        pages_by_cursor(
            {
                None: body([wire(1), wire(2), wire(3)], "p2"),
                "p2": body([wire(3), wire(4), wire(5)]),
            }
        )
    )
    response = finance_client.get(EXPORT_URL)
    ids = csv_ids(b"".join(response.streaming_content))
    assert ids == [str(uuid.UUID(int=n)) for n in range(1, 6)]
    audit = ExportAudit.objects.get()
    assert (audit.outcome, audit.rows_written) == (ExportAudit.Outcome.COMPLETE, 5)


# --- A drip-fed answer --------------------------------------------------------------------


@pytest.fixture
def drip_server() -> Iterator[str]:
    """A server that sends a valid page one byte every 20 ms: each byte arrives well within
    any read timeout, so only a deadline on the whole answer ends the wait (about 15 s
    without one)."""
    payload = body([wire(1)])
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.recv(65536)
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n"
                )
                for byte in payload:
                    if stop.wait(0.02):
                        return
                    try:
                        connection.sendall(bytes([byte]))
                    except OSError:
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(timeout=5)
    listener.close()


@pytest.fixture
def install_drip_client(drip_server, monkeypatch) -> Callable[[], metronome.MetronomeClient]:
    def install() -> metronome.MetronomeClient:
        client = metronome.MetronomeClient(
            base_url=drip_server,
            bearer_token=TOKEN,
            timeout=1.0,
            deadline=0.5,
            max_retries=0,
        )
        monkeypatch.setattr(wiring, "_client", client)
        return client

    return install


def test_a_drip_fed_answer_ends_at_the_deadline_on_the_page(finance_client, install_drip_client):
    install_drip_client()
    text = page_text(finance_client)
    assert COULD_NOT_LOAD in text and "took longer than 0.5 s" in text


def test_a_drip_fed_answer_fails_the_export(finance_client, install_drip_client):
    install_drip_client()
    response = finance_client.get(EXPORT_URL)
    assert response.status_code == 503
    audit = ExportAudit.objects.get()
    assert audit.outcome == ExportAudit.Outcome.FAILED
    assert "took longer than 0.5 s" in audit.error


# --- The token echoed back ---------------------------------------------------------------


ECHOES: dict[str, Callable[[str], str]] = {
    "plain": lambda token: token,
    "cut short": lambda token: token[:-1],
    "upper": str.upper,
    "lower": str.lower,
    "reversed": lambda token: token[::-1],
    "percent": lambda token: urllib.parse.quote(token, safe=""),
    "every-byte-percent": lambda token: "".join(f"%{ord(c):02X}" for c in token),
    "base64": lambda token: base64.b64encode(token.encode()).decode(),
    "base64 url-safe": lambda token: base64.urlsafe_b64encode(token.encode()).decode(),
    "hex": lambda token: token.encode().hex(),
}


@pytest.mark.parametrize("spelling", ECHOES)
def test_an_echoed_token_in_any_encoding_reaches_no_page_audit_sync_run_or_log(
    finance_client, install_client, spelling, caplog
):
    echoed = ECHOES[spelling](TOKEN)

    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400, json={"message": f"bad token {echoed} here"}, headers={"x-request-id": "req_7Hq2"}
        )

    client = install_client(httpx.MockTransport(echo), token=TOKEN)
    with caplog.at_level(logging.INFO):
        page = page_text(finance_client)
        finance_client.get(EXPORT_URL)
        run = index_sync.sync(client)
    shown_and_stored = [html.unescape(page), ExportAudit.objects.get().error, run.error]
    for text in [*shown_and_stored, caplog.text]:
        assert echoed not in text
        assert not mentions_token(text, TOKEN)
    for text in shown_and_stored:  # our own words, and Metronome's request ID for support
        assert "Metronome refused the request as not valid (HTTP 400)" in text
        assert "Metronome's request ID: req_7Hq2" in text
        assert "bad token" not in text
    # Operators still read what Metronome said, the token taken out.
    assert "bad token [redacted] here" in caplog.text or WITHHELD in caplog.text


def test_an_implausible_request_id_is_not_shown(finance_client, install_client):
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={}, headers={"x-request-id": "<script>x</script>"})

    install_client(httpx.MockTransport(refuse), token=TOKEN)
    page = page_text(finance_client)
    assert "Metronome refused the request as not valid (HTTP 400)" in page
    assert "request ID" not in page and "script>x" not in page


# --- Endless listings behind a pasted-ID search ------------------------------------------


def counting(answer: Callable[[httpx.Request], httpx.Response]) -> tuple[httpx.MockTransport, list]:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) > 500:  # the test's own bound: never reached when the guards hold
            return httpx.Response(200, content=body([]))
        return answer(request)

    return httpx.MockTransport(handler), calls


def test_a_pasted_search_stops_when_new_cursors_keep_returning_the_same_customer(
    finance_client, install_client
):
    counter = iter(range(1, 10_000))
    transport, calls = counting(
        lambda request: httpx.Response(200, content=body([wire(1)], f"c{next(counter)}"))
    )
    install_client(transport)
    text = finance_client.get(f"{LIST_URL}?customer_ids={uuid.UUID(int=1)}").content.decode()
    assert COULD_NOT_LOAD in text and "already sent" in text
    assert len(calls) < 10


def test_a_pasted_search_stops_when_metronome_invents_customers_without_end(
    finance_client, install_client
):
    counter = iter(range(1, 1_000_000))

    def invent(request: httpx.Request) -> httpx.Response:
        customers = [wire(next(counter)) for _ in range(100)]
        return httpx.Response(200, content=body(customers, f"c{customers[-1]['id']}"))

    transport, calls = counting(invent)
    install_client(transport)
    text = finance_client.get(f"{LIST_URL}?customer_ids={uuid.UUID(int=1)}").content.decode()
    assert COULD_NOT_LOAD in text and "more than 2,000 customers" in text
    assert len(calls) < 50


def test_a_customer_repeated_within_one_page_is_shown_once(finance_client, install_client):
    install_client(pages_by_cursor({None: body([wire(1)] * 10 + [wire(2)])}))
    text = page_text(finance_client)
    assert text.count("<tr data-customer-id=") == 2


def test_a_cookie_metronome_sets_is_never_sent_back(install_client):
    """One client serves everyone's calls: a cookie kept from one answer would go with every
    later call, whoever made it."""
    sent_cookies: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent_cookies.append(request.headers.get("cookie"))
        return httpx.Response(
            200,
            headers={"Set-Cookie": "session=first-callers; Path=/"},
            content=body([wire(1)])
            if request.url.path == "/v1/customers"
            else json.dumps({"data": wire(1)}).encode(),
        )

    client = install_client(httpx.MockTransport(answer))
    client.list_customers(metronome.CustomerQuery())
    client.get_customer(str(uuid.UUID(int=1)))

    assert sent_cookies == [None, None]
