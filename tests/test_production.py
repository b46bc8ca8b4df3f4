"""Running as in production: readiness, logs, static files, migrations and several
instances sharing one PostgreSQL and one Redis (issue: Production)."""

import io
import json
import logging
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.core.management import call_command
from django.db import OperationalError
from pythonjsonlogger.json import JsonFormatter

from bench.scratch_db import scratch_postgres
from customers import middleware
from customers.models import ExportAudit, SavedSearch
from dashboard.request_log import RequestContextFilter

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("DATABASE_URL", "")
CACHE_URL = os.environ.get("CACHE_URL", "")
ON_POSTGRES = DATABASE_URL.startswith(("postgres://", "postgresql://"))
ON_REDIS = CACHE_URL.startswith("redis://")
needs_postgres = pytest.mark.skipif(
    not ON_POSTGRES, reason="needs DATABASE_URL=postgres://... (CI's PostgreSQL run sets it)"
)


@pytest.fixture(autouse=True)
def fresh_readiness():
    cache.delete(middleware.READINESS_CACHE_KEY)
    yield
    cache.delete(middleware.READINESS_CACHE_KEY)


# --- /readyz -------------------------------------------------------------------------------


def test_readyz_is_200_when_the_database_and_metronome_answer(client, db, sandbox_api):
    response = client.get("/readyz", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200
    assert response.json() == {"ready": True, "problems": {}}


def test_readyz_is_503_naming_metronome_when_it_does_not_answer(client, db, install_client):
    install_client(httpx.MockTransport(lambda request: httpx.Response(503)), max_retries=0)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False and list(body["problems"]) == ["metronome"]
    # A short, fixed reason for an unauthenticated probe: the details are in the log.
    assert body["problems"]["metronome"] == (
        "Metronome did not answer as expected (MetronomeUnavailable)."
    )


class UnreachableDatabase:
    """This instance's database connection, refusing: as when its server is down."""

    def cursor(self):
        raise OperationalError("connection refused")


def test_readyz_checks_this_instances_database_on_every_probe_never_from_the_cache(
    client, db, sandbox_api, monkeypatch
):
    assert client.get("/readyz").status_code == 200  # Metronome's answer now cached

    monkeypatch.setattr(middleware, "connection", UnreachableDatabase())
    response = client.get("/readyz")
    assert response.status_code == 503
    assert list(response.json()["problems"]) == ["database"]


def test_readyz_is_503_naming_the_database_when_it_does_not_answer(
    client, sandbox_api, monkeypatch
):
    monkeypatch.setattr(middleware, "connection", UnreachableDatabase())
    response = client.get("/readyz")
    assert response.status_code == 503
    assert list(response.json()["problems"]) == ["database"]


def test_readyz_reuses_its_answer_for_a_few_seconds(client, db, install_client):
    calls = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(200, json={"data": [], "next_page": None})

    install_client(httpx.MockTransport(answer))
    assert [client.get("/readyz").status_code for _ in range(3)] == [200, 200, 200]
    assert calls == ["/v1/customers"]


def test_healthz_stays_a_liveness_check_with_no_metronome_call(client, install_client):
    install_client(httpx.MockTransport(lambda request: pytest.fail("called Metronome")))
    assert client.get("/healthz").status_code == 200


# --- Logs ----------------------------------------------------------------------------------


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Everything logged, through the JSON formatter and request filter as configured."""
    configured = django_settings.LOGGING["formatters"]["json"]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        JsonFormatter(configured["format"], rename_fields=configured["rename_fields"])
    )
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def finance_login(client) -> User:
    user = User.objects.create_user("fiona")
    user.groups.add(Group.objects.get(name="Finance"))
    client.force_login(user)
    return user


def test_each_request_logs_one_json_line_with_its_id_user_view_status_and_duration(
    client, db, sandbox_api, json_log
):
    finance_login(client)
    response = client.get("/customers/", HTTP_X_REQUEST_ID="proxy-id-123")
    assert response.status_code == 200
    assert response["X-Request-ID"] == "proxy-id-123"
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    request_line = next(line for line in lines if line["logger"] == "dashboard.request")
    assert request_line["request_id"] == "proxy-id-123"
    assert request_line["user"] == "fiona"
    assert request_line["view"] == "customers:list"
    assert request_line["status"] == 200
    assert request_line["method"] == "GET" and request_line["path"] == "/customers/"
    assert isinstance(request_line["duration_ms"], int)
    assert {"time", "level", "message"} <= set(request_line)
    # The API calls made for that request carry its ID, path, status, duration and attempt.
    api_line = next(line for line in lines if line["logger"] == "customers.metronome")
    assert api_line["request_id"] == "proxy-id-123"
    assert api_line["path"] == "/v1/customers" and api_line["status"] == "200"
    assert api_line["attempt"] == 1 and isinstance(api_line["duration_ms"], int)


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_request_line_counts_the_api_calls_of_the_search_pool_and_their_time(
    client, db, sandbox_api, json_log
):
    finance_login(client)
    ids = ",".join(customer["id"] for customer in sandbox_api.customers[:3])
    before = sandbox_api.request_count
    client.get(f"/customers/?customer_ids={ids}&refresh=1")
    made = sandbox_api.request_count - before
    lines = _lines(json_log)
    (request_line,) = [line for line in lines if line["logger"] == "dashboard.request"]
    # Active and archived, each a call of its own from the search's pool.
    assert made >= 2
    assert request_line["api_calls"] == made
    assert isinstance(request_line["api_ms"], int) and request_line["api_ms"] >= 0
    assert f"({made} API calls," in request_line["message"]
    assert request_line["level"] == "INFO"
    # One line per call too, but only at DEBUG.
    api_lines = [line for line in lines if line["logger"] == "customers.metronome"]
    assert len(api_lines) == made
    assert {line["level"] for line in api_lines} == {"DEBUG"}


def test_at_info_a_request_writes_one_line_and_no_line_per_api_call(
    client, db, sandbox_api, json_log
):
    logging.getLogger().setLevel(logging.INFO)  # the json_log fixture puts it back
    finance_login(client)
    ids = ",".join(customer["id"] for customer in sandbox_api.customers[:3])
    client.get(f"/customers/?customer_ids={ids}&refresh=1")
    loggers = [line["logger"] for line in _lines(json_log)]
    assert loggers.count("dashboard.request") == 1
    assert "customers.metronome" not in loggers


def test_a_streamed_export_is_logged_when_its_body_ends_with_every_page_counted(
    client, db, sandbox_api, json_log
):
    finance_login(client)
    before = sandbox_api.request_count
    export = client.get("/customers/export.csv?limit=10", HTTP_X_REQUEST_ID="export-id-3")
    assert not [line for line in _lines(json_log) if line["logger"] == "dashboard.request"]
    b"".join(export.streaming_content)  # read after the view returned, as a server does
    export.close()
    made = sandbox_api.request_count - before
    (request_line,) = [line for line in _lines(json_log) if line["logger"] == "dashboard.request"]
    assert made > 1  # 250 customers, 100 to a page
    assert request_line["api_calls"] == made
    assert request_line["request_id"] == "export-id-3" and request_line["user"] == "fiona"
    assert request_line["view"] == "customers:export" and request_line["status"] == 200


def test_a_missing_or_implausible_request_id_is_replaced_by_a_new_one(client, db):
    generated = client.get("/accounts/login/")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    hostile = client.get("/accounts/login/", HTTP_X_REQUEST_ID="<script>\nx")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", hostile)


def test_no_log_line_of_a_request_cycle_holds_the_token_or_the_pasted_ids(
    client, db, settings, install_client, json_log
):
    token = "tok_" + secrets.token_hex(20)
    settings.METRONOME_BEARER_TOKEN = token
    settings.METRONOME_SANDBOX = False

    def echo(request: httpx.Request) -> httpx.Response:
        # A hostile API: the token back in an error message, on every call.
        return httpx.Response(500, json={"message": f"bad token {token}"})

    install_client(httpx.MockTransport(echo), token=token, max_retries=1, retry_budget=0.01)
    ids = [str(uuid.UUID(int=n)) for n in range(1, 40)]
    client.post("/accounts/login/", {"username": "x", "password": token})
    finance_login(client)
    client.get("/customers/")
    client.get("/customers/", {"customer_ids": ",".join(ids)})
    client.post("/customers/", {"customer_ids": "\n".join(ids)})
    client.get("/customers/export.csv", {"customer_ids": ",".join(ids)})
    client.get("/readyz")
    output = json_log.getvalue()
    assert "dashboard.request" in output and "customers.metronome" in output
    assert token not in output
    assert not [customer_id for customer_id in ids if customer_id in output]
    # How many were pasted is logged instead.
    counts = [
        json.loads(line)["pasted_ids"]
        for line in output.splitlines()
        if json.loads(line)["logger"] == "dashboard.request"
    ]
    assert counts.count(len(ids)) == 3


# --- Housekeeping --------------------------------------------------------------------------


def test_prune_removes_old_saved_searches_and_login_records(db):
    from axes.models import AccessAttempt
    from django.utils import timezone

    user = User.objects.create_user("fiona")
    old, recent = timezone.now() - timezone.timedelta(days=40), timezone.now()
    for n, when in enumerate((old, recent)):
        SavedSearch.objects.create(key=f"search{n}", params={"customer_ids": ["x"]})
        SavedSearch.objects.filter(key=f"search{n}").update(created_at=when)
        attempt = AccessAttempt.objects.create(
            username=f"x{n}", ip_address="192.0.2.1", user_agent="", failures_since_start=1
        )
        AccessAttempt.objects.filter(pk=attempt.pk).update(attempt_time=when)
    ExportAudit.objects.create(user=user, username="fiona")
    ExportAudit.objects.update(started_at=old)

    out = io.StringIO()
    call_command("prune", "--saved-search-days=30", "--login-record-days=30", stdout=out)
    assert "Deleted 1 saved searches." in out.getvalue()
    assert SavedSearch.objects.count() == 1 and AccessAttempt.objects.count() == 1
    # Export audits are kept longer (EXPORT_AUDIT_RETENTION_DAYS, default 400).
    assert ExportAudit.objects.count() == 1


def test_prune_removes_export_audits_and_sync_runs_past_their_retention(db, settings):
    from django.utils import timezone

    from customers.models import SyncRun, WorkSlot

    settings.EXPORT_AUDIT_RETENTION_DAYS = 100
    settings.SYNC_RUN_RETENTION_DAYS = 10
    now = timezone.now()
    for days in (120, 50):
        audit = ExportAudit.objects.create(username="fiona")
        ExportAudit.objects.filter(pk=audit.pk).update(started_at=now - timezone.timedelta(days))
    outcomes = SyncRun.Outcome
    runs = {
        name: SyncRun.objects.create(outcome=outcome, started_at=now - timezone.timedelta(days))
        for name, outcome, days in [
            ("index is from", outcomes.SUCCEEDED, 40),  # the newest success: kept however old
            ("older success", outcomes.SUCCEEDED, 41),
            ("failed", outcomes.FAILED, 20),
            ("recent failure", outcomes.FAILED, 2),
        ]
    }
    WorkSlot.objects.create(holder="1", number=0, expires_at=now - timezone.timedelta(hours=1))

    dry = io.StringIO()
    call_command("prune", "--dry-run", stdout=dry)
    assert "Would delete 1 CSV export audits." in dry.getvalue()
    assert "Would delete 2 index sync runs." in dry.getvalue()
    assert ExportAudit.objects.count() == 2

    out = io.StringIO()
    call_command("prune", stdout=out)
    assert "Deleted 1 CSV export audits." in out.getvalue()
    assert "Deleted 2 index sync runs." in out.getvalue()
    assert "Deleted 1 expired work slots." in out.getvalue()
    assert ExportAudit.objects.get().started_at > now - timezone.timedelta(60)
    assert set(SyncRun.objects.values_list("pk", flat=True)) == {
        runs["index is from"].pk,
        runs["recent failure"].pk,
    }


# --- Real processes ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_env(**variables: str) -> dict[str, str]:
    """Production settings on the sandbox; blank for everything a .env could set."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "METRONOME_BEARER_TOKEN": "",
        "METRONOME_BASE_URL": "",
        "METRONOME_SANDBOX": "true",
        "SANDBOX_CUSTOMERS": "200",
        "DATABASE_URL": "",
        "CACHE_URL": "",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_THREADS": "4",
        "PYTHONUNBUFFERED": "1",
        **variables,
    }


def start_gunicorn(cwd: Path, python: str, env: dict[str, str], log: Path) -> tuple:
    port = free_port()
    env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}"}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [python, "-m", "gunicorn", "--no-control-socket", "dashboard.wsgi"],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if process.poll() is not None:
            return process, url
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.terminate()
    pytest.fail(f"gunicorn did not start: {log.read_text()[-2000:]}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.mark.slow
def test_a_fresh_clone_serves_pages_with_their_static_files_after_make_install(tmp_path):
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse"], capture_output=True).returncode:
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    install = subprocess.run(
        ["make", "install", f"PYTHON={sys.executable}"],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    python = str(clone / ".venv" / "bin" / "python")
    env = process_env(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    subprocess.run(
        [python, "manage.py", "migrate", "--noinput"],
        cwd=clone,
        env=env,
        check=True,
        capture_output=True,
    )
    log = tmp_path / "gunicorn.log"
    process, url = start_gunicorn(clone, python, env, log)
    try:
        login = httpx.get(f"{url}/accounts/login/")
        assert login.status_code == 200, log.read_text()[-2000:]
        stylesheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', login.text)
        assert stylesheets
        for href in stylesheets:
            sheet = httpx.get(f"{url}{href}")
            assert sheet.status_code == 200
            assert sheet.headers["content-type"].startswith("text/css")
    finally:
        stop(process)

    # Without the collected files the process refuses to start, naming the fix.
    subprocess.run(["rm", "-rf", str(clone / "staticfiles")], check=True)
    refused = subprocess.run(
        [python, "-m", "gunicorn", "--no-control-socket", "dashboard.wsgi"],
        cwd=clone,
        env={**env, "GUNICORN_BIND": f"127.0.0.1:{free_port()}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0
    assert "Static files have not been collected" in refused.stdout + refused.stderr
    assert "make install" in refused.stdout + refused.stderr


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database next to DATABASE_URL's, dropped afterwards."""
    with scratch_postgres(DATABASE_URL, f"dashboard_fresh_{secrets.token_hex(4)}") as url:
        yield url


@pytest.mark.slow
@needs_postgres
def test_three_concurrent_migrates_on_a_fresh_database_all_succeed_once(fresh_postgres_url):
    env = process_env(DATABASE_URL=fresh_postgres_url)
    runs = [
        subprocess.Popen(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], outputs
    with psycopg.connect(fresh_postgres_url) as connection:
        repeated = connection.execute(
            "SELECT app, name FROM django_migrations GROUP BY app, name HAVING count(*) > 1"
        ).fetchall()
        total = connection.execute("SELECT count(*) FROM django_migrations").fetchone()[0]
    assert repeated == []
    assert total > 10


needs_postgres_and_redis = pytest.mark.skipif(
    not (ON_POSTGRES and ON_REDIS),
    reason="needs DATABASE_URL=postgres://... and CACHE_URL=redis://... (CI's second run)",
)


def prepare_instances(env: dict[str, str]) -> None:
    for command in (["migrate", "--noinput"], ["ensure_demo_user"], ["collectstatic", "--noinput"]):
        subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )


def log_in(url: str, log: Path) -> str:
    """Log the demo user in on one instance; its session cookie's value."""
    return log_in_cookies(url, log)["sessionid"]


def log_in_cookies(url: str, log: Path) -> dict[str, str]:
    """Log the demo user in; the session and CSRF cookies the login set."""
    from customers.management.commands.ensure_demo_user import DEMO_PASSWORD

    # Cookies carried by hand: with DEBUG off they are Secure, and these are plain HTTP.
    form = httpx.get(f"{url}/accounts/login/")
    csrf_cookie = form.cookies["csrftoken"]
    csrf_field = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)[1]
    logged_in = httpx.post(
        f"{url}/accounts/login/",
        data={"username": "demo", "password": DEMO_PASSWORD, "csrfmiddlewaretoken": csrf_field},
        headers={"Cookie": f"csrftoken={csrf_cookie}"},
    )
    assert logged_in.status_code == 302, log.read_text()[-2000:]
    return {name: logged_in.cookies[name] for name in ("sessionid", "csrftoken")}


# --- Several workers, whatever the cache ----------------------------------------------------
# The default configuration (no CACHE_URL: each process has its own memory cache) with two
# gunicorn workers, as every real deployment has: nothing that must hold everywhere may live
# in one worker's memory.


def two_workers(tmp_path: Path, **variables: str) -> dict[str, str]:
    env = process_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        CACHE_URL="",
        GUNICORN_WORKERS="2",
        **variables,
    )
    prepare_instances(env)
    return env


@pytest.mark.slow
def test_a_logout_ends_the_session_on_every_worker(tmp_path):
    env = two_workers(tmp_path)
    log = tmp_path / "gunicorn.log"
    process, url = start_gunicorn(ROOT, sys.executable, env, log)
    try:
        cookies = log_in_cookies(url, log)
        session = {"Cookie": f"sessionid={cookies['sessionid']}"}
        # A new connection each: the requests spread over both workers, each reading (and,
        # with a per-process cache, keeping) the session.
        before = [httpx.get(f"{url}/customers/?limit=5", headers=session) for _ in range(30)]
        assert {response.status_code for response in before} == {200}, log.read_text()[-2000:]

        logged_out = httpx.post(
            f"{url}/accounts/logout/",
            data={"csrfmiddlewaretoken": cookies["csrftoken"]},
            headers={
                "Cookie": f"sessionid={cookies['sessionid']}; csrftoken={cookies['csrftoken']}"
            },
        )
        assert logged_out.status_code == 302, log.read_text()[-2000:]

        after = [httpx.get(f"{url}/customers/?limit=5", headers=session) for _ in range(30)]
        served = [response for response in after if response.status_code != 302]
        assert served == [], f"{len(served)} of 30 requests still served the old session"
        assert {response.headers["location"] for response in after} == {
            "/accounts/login/?next=/customers/%3Flimit%3D5"
        }
    finally:
        stop(process)


@pytest.mark.slow
def test_two_workers_give_one_person_no_more_exports_at_once_than_the_limit(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from customers.sandbox import Faults, SandboxAPI, SandboxServer

    # Each page of customers takes a while, so every export is still running when the last
    # one asks for its slot.
    api = SandboxAPI(300, faults=Faults(latency_s=0.5))
    with SandboxServer(api, host="127.0.0.1", port=0) as metronome:
        env = two_workers(tmp_path, METRONOME_BASE_URL=metronome.url, EXPENSIVE_WORK_PER_USER="2")
        log = tmp_path / "gunicorn.log"
        process, url = start_gunicorn(ROOT, sys.executable, env, log)
        try:
            session = {"Cookie": f"sessionid={log_in(url, log)}"}

            def export(_: int) -> int:
                response = httpx.get(f"{url}/customers/export.csv", headers=session, timeout=120)
                return response.status_code

            with ThreadPoolExecutor(8) as pool:
                statuses = list(pool.map(export, range(8)))
        finally:
            stop(process)
    assert set(statuses) <= {200, 429}, log.read_text()[-3000:]
    assert 1 <= statuses.count(200) <= 2, statuses
    assert statuses.count(429) >= 6, statuses


@pytest.mark.slow
@needs_postgres_and_redis
def test_logged_in_on_one_instance_is_logged_in_on_the_other(fresh_postgres_url, tmp_path):
    env = process_env(DATABASE_URL=fresh_postgres_url, CACHE_URL=CACHE_URL)
    prepare_instances(env)

    first, first_url = start_gunicorn(ROOT, sys.executable, env, tmp_path / "first.log")
    second, second_url = start_gunicorn(ROOT, sys.executable, env, tmp_path / "second.log")
    try:
        session = log_in(first_url, tmp_path / "first.log")
        on_second = httpx.get(
            f"{second_url}/accounts/password_change/", headers={"Cookie": f"sessionid={session}"}
        )
        assert on_second.status_code == 200
        assert "Password change" in on_second.text
        # And a stranger's cookie is not: the second instance did check.
        stranger = httpx.get(
            f"{second_url}/accounts/password_change/", headers={"Cookie": "sessionid=forged"}
        )
        assert stranger.status_code == 302
    finally:
        stop(first)
        stop(second)


@pytest.mark.slow
@needs_postgres_and_redis
def test_a_page_fetched_through_one_instance_is_served_from_the_cache_through_the_other(
    fresh_postgres_url, tmp_path
):
    from customers.sandbox import SandboxAPI, SandboxServer

    with SandboxServer(SandboxAPI(300), host="127.0.0.1", port=0) as metronome:
        # Both instances read one standalone sandbox, which counts the calls they make.
        env = process_env(
            DATABASE_URL=fresh_postgres_url,
            CACHE_URL=CACHE_URL,
            METRONOME_BASE_URL=metronome.url,
            API_PAGE_CACHE_SECONDS="300",
        )
        prepare_instances(env)
        first, first_url = start_gunicorn(ROOT, sys.executable, env, tmp_path / "first.log")
        second, second_url = start_gunicorn(ROOT, sys.executable, env, tmp_path / "second.log")
        try:
            cookie = {"Cookie": f"sessionid={log_in(first_url, tmp_path / 'first.log')}"}
            cache.clear()  # the same Redis: no page from an earlier run
            path = "/customers/?limit=7"
            before = metronome.api.request_count
            through_first = httpx.get(f"{first_url}{path}", headers=cookie)
            assert through_first.status_code == 200
            assert metronome.api.request_count - before == 1
            rows = re.findall(r'<tr data-customer-id="([0-9a-f-]{36})"', through_first.text)
            assert len(rows) == 7

            through_second = httpx.get(f"{second_url}{path}", headers=cookie)
            assert through_second.status_code == 200
            assert (
                re.findall(r'<tr data-customer-id="([0-9a-f-]{36})"', through_second.text) == rows
            )
            assert metronome.api.request_count - before == 1, "the second instance asked again"

            refreshed = httpx.get(f"{second_url}{path}&refresh=1", headers=cookie)
            assert refreshed.status_code == 200
            assert metronome.api.request_count - before == 2
        finally:
            stop(first)
            stop(second)


def test_a_static_file_missing_from_the_manifest_keeps_its_plain_name_instead_of_failing(
    tmp_path,
):
    # After a pull that adds a file, before `make install` collects it again.
    from dashboard.staticfiles import ForgivingManifestStorage

    (tmp_path / "staticfiles.json").write_text(
        json.dumps({"version": "1.1", "paths": {"old.css": "old.0123abcd.css"}, "hash": "x"})
    )
    storage = ForgivingManifestStorage(location=tmp_path, base_url="/static/")
    assert storage.url("old.css") == "/static/old.0123abcd.css"
    assert storage.url("new.css") == "/static/new.css"


def test_api_calls_in_the_search_pool_and_the_export_stream_carry_the_request_id(
    client, db, sandbox_api, json_log
):
    finance_login(client)
    ids = ",".join(customer["id"] for customer in sandbox_api.customers[:3])
    client.get(f"/customers/?customer_ids={ids}", HTTP_X_REQUEST_ID="search-id-1")
    export = client.get("/customers/export.csv", HTTP_X_REQUEST_ID="export-id-2")
    b"".join(export.streaming_content)  # read after the view returned, as a server does
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    api_ids = {line["request_id"] for line in lines if line["logger"] == "customers.metronome"}
    assert api_ids == {"search-id-1", "export-id-2"}
    export_lines = [line for line in lines if line["logger"] == "customers.export"]
    assert export_lines and {line["request_id"] for line in export_lines} == {"export-id-2"}
