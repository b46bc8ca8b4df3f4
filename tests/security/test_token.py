"""The bearer token never leaks: not into pages, exports, logs, the audit log or error pages,
over a real connection or echoed back by the API."""

import logging
import uuid
from collections.abc import Iterator

import httpx
import pytest
from django.test import Client

from customers import listing, metronome, wiring
from customers.models import ExportAudit
from customers.sandbox import SandboxAPI, SandboxServer, SandboxTransport
from tests.factories import (
    EXPORT_URL,
    LIST_URL,
    LOGIN_URL,
    attempt_login,
    body_of,
    boom,
    client_for,
    make_user,
)

pytestmark = pytest.mark.django_db

TOKEN = "tok_LEAKCHECK_7f3a9c"
TOKEN_MARKER = "LEAKCHECK"


# --- The bearer token never leaks ---------------------------------------------------------------


def leak_check_customers(count: int) -> SandboxAPI:
    return SandboxAPI(count, token=TOKEN)


def echoing(status: int) -> httpx.MockTransport:
    """Metronome answering an error whose message repeats what it was sent, token included."""

    def answer(request: httpx.Request) -> httpx.Response:
        sent = request.headers["Authorization"]
        return httpx.Response(
            status, json={"message": f"invalid token {TOKEN} (from {sent})", "token": TOKEN}
        )

    return httpx.MockTransport(answer)


def raising(exception_type: type[httpx.TransportError]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        raise exception_type(f"failed with {request.headers['Authorization']}", request=request)

    return httpx.MockTransport(answer)


def not_json(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, text=f"<html>proxy error for {TOKEN}</html>")


def first_page_then_failure() -> httpx.MockTransport:
    """One good page, then an error that echoes the token: an export that fails mid-stream."""
    api = leak_check_customers(150)

    def answer(request: httpx.Request) -> httpx.Response:
        if "next_page" in request.url.params:
            return httpx.Response(500, json={"message": f"broken, token {TOKEN}"})
        return SandboxTransport(api).handle_request(request)

    return httpx.MockTransport(answer)


LEAK_SCENARIOS = {
    "success": lambda: SandboxTransport(leak_check_customers(150)),
    "401 echoing the token": lambda: echoing(401),
    "400 echoing the token": lambda: echoing(400),
    "422 echoing the token": lambda: echoing(422),
    "500 echoing the token": lambda: echoing(500),
    "timeout": lambda: raising(httpx.ReadTimeout),
    "connection refused": lambda: raising(httpx.ConnectError),
    "not json": lambda: httpx.MockTransport(not_json),
    "fails after the first page": first_page_then_failure,
}


@pytest.fixture
def real_token(settings):
    settings.METRONOME_BEARER_TOKEN = TOKEN
    settings.METRONOME_SANDBOX = False
    settings.METRONOME_BASE_URL = "http://metronome.test"


@pytest.fixture
def every_log_record(caplog) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    for name in ("django", "httpx", "httpcore", "customers", "axes"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog


def context_text(response) -> str:
    contexts = response.context
    if contexts is None:
        return ""
    parts = []
    for context in contexts if isinstance(contexts, list) else [contexts]:
        for key, value in context.flatten().items():
            parts.append(f"{key}={value!r}")
            try:
                parts.append(str(value))
            except Exception as exc:  # a context value that can't render still can't leak
                parts.append(repr(exc))
    return "\n".join(parts)


def record_text(record: logging.LogRecord) -> str:
    parts = [record.getMessage(), repr(record.args), repr(vars(record))]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


class LeakSearch:
    """Collects every response, then searches bodies, headers, cookies and template contexts,
    plus the log records, the process's output and the audit log, for the token."""

    def __init__(self):
        self.responses: list[tuple[str, object, bytes]] = []

    def __call__(self, label: str, response):
        body = body_of(response) if not response.streaming else self._drain(response)
        self.responses.append((label, response, body))
        return response

    @staticmethod
    def _drain(response) -> bytes:
        chunks = []
        try:
            for chunk in response.streaming_content:
                chunks.append(chunk)
        except metronome.MetronomeError:
            pass  # the export aborts the download; what was sent is what we search
        return b"".join(chunks)

    def leaks(self, caplog, capfd) -> list[str]:
        found = []
        for label, response, body in self.responses:
            if TOKEN_MARKER.lower().encode() in body.lower():
                found.append(f"{label}: body")
            headers = "\n".join(f"{k}: {v}" for k, v in response.items())
            headers += str(response.cookies)
            if TOKEN_MARKER.lower() in headers.lower():
                found.append(f"{label}: headers")
            if TOKEN_MARKER.lower() in context_text(response).lower():
                found.append(f"{label}: template context")
        for record in caplog.records:
            if TOKEN_MARKER.lower() in record_text(record).lower():
                found.append(f"log record {record.name}: {record.getMessage()[:80]}")
        out, err = capfd.readouterr()
        if TOKEN_MARKER.lower() in (out + err).lower():
            found.append("process output")
        for audit in ExportAudit.objects.all():
            if TOKEN_MARKER.lower() in repr(vars(audit)).lower():
                found.append(f"export audit {audit.pk}")
        return found


@pytest.mark.parametrize("scenario", LEAK_SCENARIOS)
def test_the_bearer_token_never_appears_in_pages_exports_logs_or_the_audit_log(
    scenario, real_token, finance_user, every_log_record, capfd, install_client
):
    install_client(LEAK_SCENARIOS[scenario](), token=TOKEN, max_retries=1, retry_budget=0.1)
    capfd.readouterr()
    client = client_for(finance_user)
    search = LeakSearch()
    ids = [str(uuid.UUID(int=n)) for n in range(1, 4)]

    search("page", client.get(LIST_URL))
    search("fragment", client.get(f"{LIST_URL}?limit=10", HTTP_HX_REQUEST="true"))
    search("pasted ids", client.get(LIST_URL, {"customer_ids": ",".join(ids)}))
    search(
        "htmx post", client.post(LIST_URL, {"customer_ids": "\n".join(ids)}, HTTP_HX_REQUEST="true")
    )
    search("cursor", client.get(f"{LIST_URL}?next_page=abc"))
    search("export", client.get(EXPORT_URL))
    search("filtered export", client.get(EXPORT_URL, {"customer_ids": ",".join(ids)}))

    assert ExportAudit.objects.count() == 2
    assert every_log_record.records, "nothing was logged: the search proves nothing"
    assert search.leaks(every_log_record, capfd) == []


def test_the_bearer_token_never_appears_over_a_real_connection(
    real_token, monkeypatch, finance_user, every_log_record, capfd
):
    with SandboxServer(SandboxAPI(150, token=TOKEN), host="127.0.0.1", port=0) as server:
        client = metronome.MetronomeClient(base_url=server.url, bearer_token=TOKEN)
        monkeypatch.setattr(wiring, "_client", client)
        capfd.readouterr()
        search = LeakSearch()
        user = client_for(finance_user)
        page = search("page", user.get(LIST_URL))
        export = search("export", user.get(EXPORT_URL))
        client.close()
    assert page.status_code == 200 and export.status_code == 200
    assert any(r.name.startswith("httpcore") for r in every_log_record.records)
    assert search.leaks(every_log_record, capfd) == []


def test_the_bearer_token_never_appears_on_other_pages_or_errors(
    real_token,
    monkeypatch,
    superuser,
    finance_user,
    every_log_record,
    capfd,
    settings,
    install_client,
):
    install_client(SandboxTransport(leak_check_customers(150)), token=TOKEN)
    capfd.readouterr()
    search = LeakSearch()
    admin = client_for(superuser)
    search("export", admin.get(EXPORT_URL))
    search("login", Client().get(LOGIN_URL))
    search("failed login", Client().post(LOGIN_URL, {"username": "root", "password": "x"}))
    for _ in range(settings.AXES_FAILURE_LIMIT):
        search("locked out", attempt_login(Client(), "root", "wrong", "198.51.100.3"))
    search("healthz", Client().get("/healthz"))
    for url in (
        "/admin/",
        "/admin/customers/exportaudit/",
        f"/admin/customers/exportaudit/{ExportAudit.objects.get().pk}/change/",
        "/admin/auth/user/",
        "/admin/axes/accessattempt/",
    ):
        search(url, admin.get(url))
    search("403", client_for(make_user("nobody")).get(LIST_URL))
    search("404", admin.get("/nope/"))
    monkeypatch.setattr(listing, "find", boom)
    crashing = client_for(finance_user)
    crashing.raise_request_exception = False
    search("crash while the page streams", crashing.get(LIST_URL))
    monkeypatch.setattr(listing, "expand_saved_search", boom)
    crash = search("500", crashing.get(LIST_URL))
    assert crash.status_code == 500
    assert search.leaks(every_log_record, capfd) == []


def test_an_api_error_message_echoing_the_token_is_never_shown(
    real_token, support_user, install_client
):
    install_client(echoing(400), token=TOKEN)
    body = client_for(support_user).get(LIST_URL).content.decode()
    assert "Metronome refused the request as not valid (HTTP 400)" in body
    assert TOKEN_MARKER not in body
