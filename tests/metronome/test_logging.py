"""The client's request log, and the bearer token never reaching the logs or the errors
(customers/metronome/redaction.py).
"""

from __future__ import annotations

import base64
import logging
import re
import socket
import urllib.parse

import httpx
import pytest

from customers.metronome import (
    BadRequest,
    CustomerQuery,
    MetronomeClient,
    MetronomeError,
    MetronomeTimeout,
    MetronomeUnavailable,
    TokenRejected,
)
from customers.metronome.redaction import mentions_token
from customers.sandbox import SandboxAPI, SandboxServer
from tests.fake_metronome import (
    Script,
    customers_of,
    error,
    make_client,
    page,
    wire_customer,
)

# --- 7. The token never reaches the logs ------------------------------------------------------

SECRET = "tok_live_0d9c8b7a_NEVER_LOG_ME"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _capture_everything(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "customers.metronome"):
        caplog.set_level(logging.DEBUG, logger=name)


def test_the_token_never_reaches_the_logs_or_the_errors(caplog, sleeps):
    _capture_everything(caplog)
    errors: list[Exception] = []
    answers = {
        "success": page([wire_customer(1)]),
        "rejected": error(401, "Unauthorized"),
        "server error": error(500),
        "timeout": httpx.ReadTimeout,
        "connection error": httpx.ConnectError,
    }
    for answer in answers.values():
        client = make_client(Script(answer), sleeps, bearer_token=SECRET)
        try:
            client.list_customers(CustomerQuery(customer_ids=("a",)))
        except MetronomeError as exc:
            errors.append(exc)
    # Over real sockets too, so httpcore's own connection logging is exercised.
    with (
        SandboxServer(SandboxAPI(30, token=SECRET)) as accepts,
        SandboxServer(SandboxAPI(30, token="another-token")) as rejects,
    ):
        for url in (accepts.url, rejects.url, f"http://127.0.0.1:{_closed_port()}"):
            client = MetronomeClient(base_url=url, bearer_token=SECRET, sleep=sleeps.append)
            try:
                list(customers_of(client, CustomerQuery(), page_size=10))
            except MetronomeError as exc:
                errors.append(exc)
            client.close()

    assert len(errors) == 6
    assert {type(e) for e in errors} >= {TokenRejected, MetronomeUnavailable, MetronomeTimeout}
    names = {record.name for record in caplog.records}
    assert "httpx" in names and any(n.startswith("httpcore") for n in names)
    for record in caplog.records:
        seen = f"{record.msg} {record.args!r} {record.getMessage()} {record.exc_text or ''}"
        assert SECRET not in seen, f"token logged by {record.name}"
    assert SECRET not in caplog.text
    for exc in errors:
        assert SECRET not in str(exc) and SECRET not in repr(exc.args)


def test_each_request_is_logged_with_method_path_status_and_attempt(caplog, sleeps):
    _capture_everything(caplog)
    script = Script(error(503), httpx.ReadTimeout, page([]))

    make_client(script, sleeps, max_retries=2).list_customers(CustomerQuery(customer_ids=("a",)))

    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "customers.metronome" and "(attempt" in r.getMessage()
    ]
    assert len(lines) == 3
    for line, outcome, attempt in zip(lines, ["503", "timeout", "200"], [1, 2, 3], strict=True):
        assert "GET" in line
        assert "/v1/customers" in line
        assert outcome in line
        assert re.search(rf"attempt\D*{attempt}\b", line)


@pytest.mark.parametrize(
    "echo",
    [
        lambda token: token,
        lambda token: token.upper(),
        lambda token: token[1:-1],
        lambda token: token[::-1],
        lambda token: urllib.parse.quote(token, safe=""),
        lambda token: urllib.parse.quote(urllib.parse.quote(token, safe=""), safe=""),
        lambda token: "".join(f"%{ord(c):02x}" for c in token),
        lambda token: base64.b64encode(token.encode()).decode(),
        lambda token: token.encode().hex(),
        lambda token: "".join(f"&#{ord(c)};" for c in token),
    ],
    ids=[
        "exact",
        "upper",
        "cut",
        "reversed",
        "percent",
        "double-percent",
        "every-byte-percent",
        "base64",
        "hex",
        "html",
    ],
)
def test_an_api_error_message_quoting_the_token_is_shown_never_and_logged_redacted(
    sleeps, echo, caplog
):
    script = Script(error(400, f"Malformed header 'Bearer {echo(SECRET)}' near position 7"))

    with caplog.at_level(logging.WARNING), pytest.raises(BadRequest) as caught:
        make_client(script, sleeps, bearer_token=SECRET).list_customers(CustomerQuery())

    message = str(caught.value)
    assert "near position 7" not in message and "Malformed" not in message
    assert not mentions_token(message, SECRET) and not mentions_token(caplog.text, SECRET)
    assert "near position 7" in caplog.text or "message withheld" in caplog.text
