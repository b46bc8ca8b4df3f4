"""The CSV download: every page of exactly what was filtered, streamed, safe in Excel, and
never a truncated file that looks complete."""

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from django.contrib.auth.models import User

from customers import export
from customers.metronome import (
    CustomerQuery,
    MetronomeUnavailable,
)
from customers.models import ExportAudit, SavedSearch
from customers.sandbox import Faults, SandboxAPI, SandboxServer
from tests.factories import CSV_BOM, numbered_wire_customer, parse_csv

pytestmark = pytest.mark.django_db

URL = "/customers/export.csv"
HEADER = [
    "id",
    "name",
    "external_id",
    "ingest_aliases",
    "salesforce_account_id",
    "billable_status",
    "billable_status_effective_at",
    "created_at",
    "updated_at",
    "archived_at",
    "custom_fields",
]
FILENAME = re.compile(
    r'attachment; filename="metronome-customers-(?:SANDBOX-)?(\w+)-(\d{8}T\d{4}Z)\.csv"'
)


def download(client, query: str = "") -> tuple[list[str], list[list[str]]]:
    response = client.get(f"{URL}?{query}" if query else URL)
    assert response.status_code == 200, response.content
    table = parse_csv(b"".join(response.streaming_content))
    return table[0], table[1:]


def active_ids(api) -> list[str]:
    return [c["id"] for c in api.customers if c.get("archived_at") is None]


def archived_ids(api) -> list[str]:
    return [c["id"] for c in api.customers if c.get("archived_at") is not None]


# --- Formula neutralisation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        (CustomerQuery(), "active"),
        (CustomerQuery(only_archived=True), "archived"),
        (CustomerQuery(ingest_alias="acct_1"), "filtered"),
        (CustomerQuery(customer_ids=("a",), only_archived=True), "filtered"),
        (CustomerQuery(salesforce_account_ids=("001Dn00000AbCdEIAZ",)), "filtered"),
    ],
)
def test_the_filename_says_what_it_holds_and_when(query, kind):
    at = datetime(2026, 11, 25, 19, 5, 59, tzinfo=timezone(timedelta(hours=1)))
    assert export.filename(query, at) == f"metronome-customers-{kind}-20261125T1805Z.csv"
    assert (
        export.filename(query, at, sandbox=True)
        == f"metronome-customers-SANDBOX-{kind}-20261125T1805Z.csv"
    )


# --- The download --------------------------------------------------------------------------


def test_every_page_is_exported_not_just_the_visible_one(finance_client, install_sandbox):
    api = install_sandbox(1050)

    header, rows = download(finance_client, "limit=10&next_page=whatever&prev=a&prev=b")

    assert header == HEADER
    assert [row[0] for row in rows] == active_ids(api)
    assert len(rows) > 900
    # Ten or eleven pages of 100, whatever page size the person was looking at.
    assert api.request_count == -(-len(rows) // 100)


def test_the_page_links_to_the_download_of_what_it_shows(finance_client, sandbox_api):
    page = finance_client.get("/customers/?only_archived=true&limit=10").content.decode()

    link = re.search(r'id="download-csv" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert link == f"{URL}?only_archived=true"
    _, rows = download(finance_client, link.partition("?")[2])
    assert [row[0] for row in rows] == archived_ids(sandbox_api)


def test_archived_customers_are_exported_when_the_page_shows_them(finance_client, sandbox_api):
    _, rows = download(finance_client, "only_archived=true")

    assert [row[0] for row in rows] == archived_ids(sandbox_api)
    assert all(row[9] for row in rows)


def test_a_pasted_search_of_1000_ids_exports_every_match_once(finance_client, install_sandbox):
    api = install_sandbox(2500)
    wanted = active_ids(api)[::2][:1000]
    saved = SavedSearch.store({"customer_ids": "\n".join(wanted)}, finance_client.user)

    _, rows = download(finance_client, f"search={saved.key}")

    exported = [row[0] for row in rows]
    assert len(exported) == len(set(exported)) == 1000
    assert set(exported) == set(wanted)


def test_the_file_starts_with_a_bom_and_ends_rows_with_crlf(finance_client, install_sandbox):
    install_sandbox([numbered_wire_customer(1, "Line one\nLine two"), numbered_wire_customer(2)])

    body = b"".join(finance_client.get(URL).streaming_content)

    assert body.startswith(CSV_BOM + b"id,name,external_id,")
    assert body.endswith(b"\r\n")
    # Three records: the header and two customers; the newline inside a quoted cell stays.
    assert body.count(b"\r\n") == 3
    assert b'"Line one\nLine two"' in body


def test_text_is_quoted_as_rfc_4180_and_neutralised_as_owasp_says(
    finance_client, install_sandbox, settings
):
    settings.CSV_CUSTOM_FIELD_COLUMNS = ["notes", "Fälligkeit (Tage)"]
    names = [
        "=1+2",
        "+Plus Consulting",
        "-2+3+cmd|' /C calc'!A0",
        "@Home Networks",
        "\tTabbed",
        "\rReturned",
        "-42",
        "1e5",
        'Smith, Jones & "Partners" LLC',
        "Line one\nLine two",
        "株式会社テスト Zürich Ørsted 🚀",
    ]
    install_sandbox(
        [
            numbered_wire_customer(
                n, name, custom_fields={"notes": name, "Fälligkeit (Tage)": "30"}
            )
            for n, name in enumerate(names, start=1)
        ]
    )
    response = finance_client.get(URL)
    body = b"".join(response.streaming_content)

    header, *rows = parse_csv(body)

    expected = [
        "'=1+2",
        "'+Plus Consulting",
        "'-2+3+cmd|' /C calc'!A0",
        "'@Home Networks",
        "'\tTabbed",
        "'\rReturned",
        "-42",
        "1e5",
        'Smith, Jones & "Partners" LLC',
        "Line one\nLine two",
        "株式会社テスト Zürich Ørsted 🚀",
    ]
    assert header == [*HEADER, "custom_fields.notes", "custom_fields.Fälligkeit (Tage)"]
    assert [row[1] for row in rows] == expected
    assert [row[11] for row in rows] == expected
    assert {row[12] for row in rows} == {"30"}
    # The JSON column holds the values as they are: it starts with `{`, so it is safe.
    assert rows[0][10] == '{"notes": "=1+2", "Fälligkeit (Tage)": "30"}'
    assert b'"Smith, Jones & ""Partners"" LLC"' in body
    assert b'"\'\rReturned"' in body
    assert "株式会社テスト".encode() in body


def test_a_customer_row_in_the_file(finance_client, install_sandbox):
    install_sandbox(
        [
            numbered_wire_customer(
                7,
                "Acme",
                ingest_aliases=["acme-1", "billing@acme.example"],
                customer_config={"salesforce_account_id": "001Dn00000AbCdEIAZ"},
                custom_fields={"region": "eu-west"},
                archived_at=None,
                current_billable_status={
                    "value": "billable",
                    "effective_at": "2024-03-05T09:30:00-05:00",
                },
            )
        ]
    )

    _, rows = download(finance_client)

    assert rows == [
        [
            "00000000-0000-0000-0000-000000000007",
            "Acme",
            "ext-7",
            "acme-1; billing@acme.example",
            "001Dn00000AbCdEIAZ",
            "billable",
            "2024-03-05T14:30:00.000000Z",
            "2024-03-01T12:00:07.123000Z",
            "2024-03-02T12:00:07.000000Z",
            "",
            '{"region": "eu-west"}',
        ]
    ]


@pytest.mark.parametrize("sandbox", [True, False])
def test_a_download_of_the_sandboxs_made_up_customers_says_so_in_its_name(
    finance_client, install_sandbox, settings, sandbox
):
    settings.METRONOME_SANDBOX = sandbox
    install_sandbox()  # after the settings change, which drops the process's client
    response = finance_client.get(URL)
    b"".join(response.streaming_content)
    assert ("metronome-customers-SANDBOX-" in response["Content-Disposition"]) is sandbox


def test_the_download_is_a_streamed_attachment_named_for_what_it_holds(finance_client, sandbox_api):
    response = finance_client.get(f"{URL}?only_archived=true")

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Cache-Control"] == "no-store"
    assert response["X-Content-Type-Options"] == "nosniff"
    kind, stamp = FILENAME.fullmatch(response["Content-Disposition"]).groups()
    audit = ExportAudit.objects.get()
    assert kind == "archived"
    assert stamp == f"{audit.started_at.astimezone(UTC):%Y%m%dT%H%MZ}"
    b"".join(response.streaming_content)


@pytest.mark.parametrize(
    ("query", "kind"),
    [("", "active"), ("only_archived=true", "archived"), ("ingest_alias=x", "filtered")],
)
def test_the_filename_names_active_archived_or_filtered(finance_client, sandbox_api, query, kind):
    response = finance_client.get(f"{URL}?{query}")
    assert FILENAME.fullmatch(response["Content-Disposition"]).group(1) == kind
    b"".join(response.streaming_content)


def test_the_response_starts_after_the_first_page_not_the_last(finance_client, install_sandbox):
    api = install_sandbox(1050)

    response = finance_client.get(URL)

    # The first page only: the next is asked for when the first is written.
    assert api.request_count == 1
    chunks = iter(response.streaming_content)
    first = next(chunks)
    assert len(parse_csv(first)) == 1 + 100
    assert sum(1 for _ in chunks) >= 8


def test_an_empty_result_is_a_complete_file_with_just_the_header(finance_client, sandbox_api):
    header, rows = download(finance_client, "ingest_alias=nobody-has-this")

    assert (header, rows) == (HEADER, [])
    assert ExportAudit.objects.get().outcome == ExportAudit.Outcome.COMPLETE


def test_a_long_id_search_that_matches_nobody_is_a_header_only_file(finance_client, sandbox_api):
    unknown = [str(uuid.UUID(int=10**12 + n)) for n in range(150)]
    saved = SavedSearch.store({"customer_ids": ",".join(unknown)}, finance_client.user)

    header, rows = download(finance_client, f"search={saved.key}")

    assert (header, rows) == (HEADER, [])


# --- Failures ------------------------------------------------------------------------------


def test_each_customer_is_exported_once_despite_transient_faults(finance_client, install_sandbox):
    api = install_sandbox(1050)
    api.faults = Faults(fail_every=3, rate_limit_every=5, retry_after_s=0.01, empty_page_every=4)

    _, rows = download(finance_client)

    assert [row[0] for row in rows] == active_ids(api)
    audit = ExportAudit.objects.get()
    assert (audit.outcome, audit.rows_written) == (ExportAudit.Outcome.COMPLETE, len(rows))


def test_a_permanent_failure_mid_stream_aborts_the_download(finance_client, install_sandbox):
    api = install_sandbox(1050)
    response = finance_client.get(URL)
    assert response.status_code == 200
    received = []

    with pytest.raises(MetronomeUnavailable):
        for chunk in response.streaming_content:
            received.append(chunk)
            api.faults = Faults(fail_every=1, fail_status=503)

    rows = parse_csv(b"".join(received))[1:]
    assert 100 <= len(rows) < len(active_ids(api))
    audit = ExportAudit.objects.get()
    assert audit.outcome == ExportAudit.Outcome.FAILED
    assert audit.rows_written == len(rows)
    assert "Metronome is not answering normally (HTTP 503)" in audit.error
    assert audit.duration_ms is not None


@pytest.mark.parametrize(
    ("break_it", "status", "message"),
    [
        (lambda api: setattr(api, "faults", Faults(fail_every=1)), 503, "not answering normally"),
        (lambda api: setattr(api, "token", "another-token"), 502, "rejected the API token"),
    ],
)
def test_a_failure_before_the_first_byte_is_an_error_page(
    finance_client, sandbox_api, break_it, status, message
):
    break_it(sandbox_api)

    response = finance_client.get(f"{URL}?only_archived=true")

    assert response.status_code == status
    assert not response.streaming
    assert response["Content-Type"].startswith("text/html")
    body = response.content.decode()
    assert message in body
    assert 'href="/customers/?only_archived=true"' in body
    audit = ExportAudit.objects.get()
    assert (audit.outcome, audit.rows_written) == (ExportAudit.Outcome.FAILED, 0)
    assert message in audit.error


# Closing a response sends request_finished, which closes a connection that is inside a
# transaction: a real database transaction per test, not one wrapped around it.
# A real transaction, and afterwards the groups and permissions the migrations made are
# restored (a plain transactional test empties every table for the tests after it).
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_client_that_goes_away_is_recorded_as_a_failed_export(finance_client, install_sandbox):
    install_sandbox(1050)
    response = finance_client.get(URL)
    chunks = iter(response.streaming_content)

    next(chunks)
    next(chunks)
    # What a WSGI server does when a write to the client fails.
    response.close()

    audit = ExportAudit.objects.get()
    assert audit.outcome == ExportAudit.Outcome.FAILED
    assert audit.error == "client disconnected"
    # The first page was taken and more asked for; the second's fate is unknown.
    assert audit.rows_written == 100


# Migrates a fresh database and prints the session cookie of a Finance user.
SESSION_SCRIPT = """
import django
django.setup()
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client
call_command("migrate", verbosity=0)
user = User.objects.create_user("gina")
user.groups.add(Group.objects.get(name="Finance"))
client = Client()
client.force_login(user)
print(client.cookies["sessionid"].value)
"""


@pytest.mark.slow
def test_over_http_an_aborted_export_is_an_unfinished_chunked_body(tmp_path):
    """What the browser sees, through gunicorn as in production: a complete export ends
    its chunked body; a failed one is cut off, which browsers and curl report as failed."""
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    if gunicorn is None:
        pytest.skip("gunicorn is not installed")
    root = Path(__file__).resolve().parents[2]
    api = SandboxAPI(2000)
    with SandboxServer(api, host="127.0.0.1") as sandbox, socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "dashboard.settings",
            # DEBUG off would need collectstatic first (the favicon URL reads the manifest).
            "DEBUG": "true",
            "SECRET_KEY": "test-only",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "METRONOME_BEARER_TOKEN": "",
            "METRONOME_BASE_URL": sandbox.url,
        }
        session = subprocess.run(
            [sys.executable, "-c", SESSION_SCRIPT],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()[-1]  # The lines before are the JSON log on stdout.
        server = subprocess.Popen(
            [gunicorn, "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "--workers", "1",
             "--access-logfile", "/dev/null", "--error-logfile", str(tmp_path / "gunicorn.log"),
             "dashboard.wsgi"],
            cwd=root,
            env=env,
        )  # fmt: skip
        http = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Cookie": f"sessionid={session}"}
        )
        try:
            for _ in range(200):
                with contextlib.suppress(httpx.TransportError):
                    if http.get("/healthz").status_code == 200:
                        break
                time.sleep(0.1)
            else:
                pytest.fail("gunicorn did not start")

            complete = http.get("/customers/export.csv")
            assert complete.headers["transfer-encoding"] == "chunked"
            assert len(parse_csv(complete.content)) - 1 == len(active_ids(api))

            api.faults = Faults(latency_s=0.02)
            received = bytearray()
            with http.stream("GET", "/customers/export.csv") as response:
                assert response.status_code == 200
                with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
                    for chunk in response.iter_bytes():
                        received += chunk
                        api.faults = Faults(fail_every=1)
            # A strict prefix of the complete file: cut off, and the client knows it.
            assert 0 < len(received) < len(complete.content)
            assert complete.content.startswith(received)
        finally:
            http.close()
            server.terminate()
            server.wait(timeout=30)


# --- Bad requests and access -----------------------------------------------------------------


def test_invalid_filters_are_a_400_page_that_links_back(finance_client, sandbox_api):
    response = finance_client.get(f"{URL}?customer_ids=not-a-uuid&limit=25")

    assert response.status_code == 400
    body = response.content.decode()
    assert "No Metronome customer ID found in “not-a-uuid”" in body
    assert 'href="/customers/?customer_ids=not-a-uuid&amp;limit=25"' in body
    assert sandbox_api.request_count == 0
    assert not ExportAudit.objects.exists()


def test_an_unknown_saved_search_is_a_400_page(finance_client, sandbox_api):
    response = finance_client.get(f"{URL}?search=doesnotexist")

    assert response.status_code == 400
    assert "saved search does not exist" in response.content.decode()
    assert sandbox_api.request_count == 0


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_a_download_followed_from_another_site_asks_first_and_writes_nothing(
    finance_client, sandbox_api, site
):
    # A GET that writes: another site's link must not start downloads in someone's name.
    response = finance_client.get(f"{URL}?only_archived=true", headers={"Sec-Fetch-Site": site})

    assert response.status_code == 403
    body = response.content.decode()
    assert "followed from another website" in body
    assert f'href="{URL}?only_archived=true">Download it</a>' in body
    assert sandbox_api.request_count == 0
    assert not ExportAudit.objects.exists()


@pytest.mark.parametrize("site", ["same-origin", "none", None])
def test_a_download_from_this_site_a_bookmark_or_a_script_starts(finance_client, sandbox_api, site):
    headers = {"Sec-Fetch-Site": site} if site else {}
    response = finance_client.get(f"{URL}?only_archived=true", headers=headers)

    assert response.status_code == 200
    b"".join(response.streaming_content)
    assert ExportAudit.objects.get().outcome == ExportAudit.Outcome.COMPLETE


def test_support_staff_may_not_export(support_client, sandbox_api):
    assert support_client.get(URL).status_code == 403
    assert sandbox_api.request_count == 0


def test_anonymous_visitors_are_sent_to_log_in(client, sandbox_api):
    response = client.get(URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_only_get_is_allowed(finance_client, sandbox_api):
    assert finance_client.post(URL).status_code == 405


# --- The audit log -------------------------------------------------------------------------


def test_a_complete_export_is_audited_with_who_what_and_how_long(finance_client, sandbox_api):
    _, rows = download(finance_client, "only_archived=true&limit=10")

    audit = ExportAudit.objects.get()
    assert audit.user == finance_client.user
    assert audit.username == "fiona"
    assert json.loads(audit.filters) == {"only_archived": True}
    assert audit.outcome == ExportAudit.Outcome.COMPLETE
    assert audit.rows_written == len(rows) > 0
    assert audit.error == ""
    assert audit.duration_ms is not None


def test_the_audit_keeps_the_validated_filters_never_junk_parameters(finance_client, sandbox_api):
    junk = "&".join(f"junk{n}={'x' * 70}" for n in range(100))  # 7 KB of it
    ids = ",".join(customer["id"] for customer in sandbox_api.customers[:2])
    download(finance_client, f"customer_ids={ids}&{junk}")

    audit = ExportAudit.objects.get()
    assert "junk" not in audit.filters and "xxxx" not in audit.filters
    assert json.loads(audit.filters) == {"customer_ids": ids.split(",")}


def test_a_long_pasted_list_is_audited_as_its_first_ids_and_a_count(finance_client, sandbox_api):
    ids = [customer["id"] for customer in sandbox_api.customers[:100]]
    download(finance_client, "customer_ids=" + ",".join(ids))

    audited = json.loads(ExportAudit.objects.get().filters)["customer_ids"]
    assert audited[:-1] == ids[: export.AUDITED_IDS]
    assert audited[-1] == f"… {100 - export.AUDITED_IDS} more (100 in all)"


def test_the_audited_filters_are_cut_to_the_columns_size():
    from customers.metronome import CustomerQuery

    text = export.audited_filters(CustomerQuery(ingest_alias="a" * 5000))
    assert len(text) == export.MAX_AUDITED_FILTERS == 2000
    assert text.endswith("…")


def test_sequential_exports_past_the_rate_are_refused_until_a_minute_has_passed(
    finance_client, sandbox_api, settings
):
    settings.EXPORTS_PER_MINUTE = 3
    for _ in range(3):
        download(finance_client, "limit=10")

    refused = finance_client.get(URL)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "60"
    assert "3 downloads in the last minute" in refused.content.decode()
    assert ExportAudit.objects.count() == 3  # a refused export is no audit row

    ExportAudit.objects.update(started_at=datetime.now(UTC) - timedelta(seconds=61))
    allowed = finance_client.get(URL)
    assert allowed.status_code == 200
    b"".join(allowed.streaming_content)


@pytest.fixture
def superuser_client(client):
    admin = User.objects.create_superuser("root", "root@example.com", "x")
    client.force_login(admin)
    return client


def make_audit() -> ExportAudit:
    return ExportAudit.objects.create(
        username="fiona",
        filters='{"only_archived":true}',
        outcome=ExportAudit.Outcome.COMPLETE,
        rows_written=12,
        duration_ms=3400,
    )


def test_the_admin_lists_exports(superuser_client):
    make_audit()

    response = superuser_client.get("/admin/customers/exportaudit/?q=fiona&outcome__exact=complete")

    assert response.status_code == 200
    body = response.content.decode()
    assert "fiona" in body and "3.4 s" in body


def test_not_even_a_superuser_may_add_change_or_delete_an_audit_row(superuser_client):
    audit = make_audit()
    base = "/admin/customers/exportaudit"

    assert superuser_client.get(f"{base}/add/").status_code == 403
    assert superuser_client.get(f"{base}/{audit.pk}/delete/").status_code == 403
    view = superuser_client.get(f"{base}/{audit.pk}/change/")
    assert view.status_code == 200
    assert b'name="_save"' not in view.content
    assert b'name="username"' not in view.content
    assert b"<textarea" not in view.content
    response = superuser_client.post(
        f"{base}/{audit.pk}/change/", {"username": "mallory", "rows_written": "0"}
    )
    assert response.status_code == 403
    audit.refresh_from_db()
    assert (audit.username, audit.rows_written) == ("fiona", 12)


def test_a_rate_limited_export_passes_on_retry_after_clamped_never_metronomes_number(
    finance_client, install_client
):
    def limited(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json={"message": "slow"}, headers={"retry-after": "999999"})

    install_client(httpx.MockTransport(limited), retry_budget=20, max_retries=0)
    response = finance_client.get(URL)

    assert response.status_code == 503
    assert response["Retry-After"] == "20"
    body = response.content.decode()
    assert "try again in 20 s" in body and "999999" not in body
    assert "999999" not in ExportAudit.objects.get().error
