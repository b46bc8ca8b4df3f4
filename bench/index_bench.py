"""Benchmark of the customer index: `manage.py sync_customers` against a plain httpx paging
loop, and the search's latency, at 100,000 customers.

    .venv/bin/python bench/index_bench.py [--quick]

`run(quick)` returns the results as a Markdown section (`make bench` prints it). The sandbox
server runs in its own process (`manage.py run_sandbox`), so its CPU does not share the
GIL with the client. The plain loop pages both listings (active, then archived) with
limit=100 and decodes every page's JSON, which is the least any sync must do. Each sync
runs `manage.py sync_customers` in a fresh process on a fresh database: the first sync
inserts everything, the second finds nothing changed; its time is the one the command
reports (Django's start-up left out), its peak memory the process's maximum RSS.

The searches run in one process against the synced index: SQLite always, and PostgreSQL
when DATABASE_URL names one (a scratch database `<name>_bench` is created beside it and
dropped after). Each query kind runs repeatedly; p50 and p99 are over all its runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import table, verdict  # noqa: E402  (after the path the script needs)

MANAGE = [sys.executable, str(ROOT / "manage.py")]


# --- The plain loop: what someone would write by hand ----------------------------------------


def plain_paging(base_url: str) -> int:
    """Every customer, active and archived, paged with httpx. Returns how many."""
    import httpx

    from customers.sandbox import SANDBOX_TOKEN

    customers = 0
    headers = {"Authorization": f"Bearer {SANDBOX_TOKEN}", "Accept": "application/json"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
        for only_archived in ("false", "true"):
            params = {"only_archived": only_archived, "limit": "100"}
            while True:
                response = http.get("/v1/customers", params=params)
                response.raise_for_status()
                body = response.json()
                customers += len(body["data"])
                if not body["next_page"]:
                    break
                params["next_page"] = body["next_page"]
    return customers


# --- Processes ---------------------------------------------------------------------------------


@contextlib.contextmanager
def sandbox_server(customers: int) -> Iterator[str]:
    server = subprocess.Popen(
        [*MANAGE, "run_sandbox", "--port", "0", "--customers", str(customers)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )
    try:
        first_line = server.stdout.readline() if server.stdout else ""
        match = re.search(r"at (http://\S+)", first_line)
        if not match:
            raise SystemExit(f"the sandbox server did not start: {first_line!r}")
        yield match[1]
    finally:
        server.terminate()
        server.wait()


def django_env(base_url: str, database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        "METRONOME_BEARER_TOKEN": "",
        "METRONOME_BASE_URL": base_url,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
    }


def run_process(command: list[str], env: dict[str, str]) -> tuple[str, int]:
    """Run to the end; returns its output and its peak resident set size in KiB."""
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command[1:3])} failed:\n{stderr[-3000:]}")
    peak = re.search(r"peak_rss_kib=(\d+)", stdout + stderr)
    return stdout, int(peak[1]) if peak else 0


SYNC_WITH_PEAK = (
    "import resource, sys, django; django.setup();"
    "from django.core.management import call_command;"
    "call_command('sync_customers');"
    "print('peak_rss_kib=%d' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
)


def timed_sync(env: dict[str, str]) -> tuple[float, int]:
    """Seconds of one sync as the command reports it, and the process's peak RSS in KiB."""
    output, peak = run_process([sys.executable, "-c", SYNC_WITH_PEAK], env)
    match = re.search(r"synced in ([0-9.]+)s", output)
    if not match:
        raise SystemExit(f"unexpected sync output: {output!r}")
    return float(match[1]), peak


@contextlib.contextmanager
def scratch_postgres(database_url: str) -> Iterator[str]:
    """A fresh database beside DATABASE_URL's (which need not exist), dropped afterwards."""
    import psycopg

    base, _, name = database_url.rpartition("/")
    scratch = f"{name.split('?')[0]}_bench"
    maintenance = f"{base}/postgres"
    with psycopg.connect(maintenance, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
        admin.execute(f'CREATE DATABASE "{scratch}"')
    try:
        yield f"{base}/{scratch}"
    finally:
        with psycopg.connect(maintenance, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


# --- Search latency (runs in a child with Django set up) ---------------------------------------


def role_search(repeats: int) -> None:
    import django

    django.setup()
    from customers.index.search import Billable, IndexFilters, Sort, search
    from customers.models import IndexedCustomer

    sample = IndexedCustomer.objects.exclude(salesforce_account_id="").order_by("id")[:200]
    picked = list(sample)
    first_words = sorted({c.name.split()[0] for c in picked if len(c.name.split()[0]) >= 5})[:20]
    two_words = [" ".join(reversed(c.name.split()[:2])) for c in picked if len(c.name.split()) > 1]
    kinds: dict[str, list] = {
        "name, one word": [lambda w=w: search(w) for w in first_words],
        "name, partial word": [lambda w=w: search(w[:4]) for w in first_words],
        "name, two words reversed": [lambda w=w: search(w) for w in two_words[:20]],
        "misspelt name": [lambda w=w: search(w[:2] + w[3] + w[2] + w[4:]) for w in first_words],
        "Salesforce ID (15 chars)": [
            lambda c=c: search(c.salesforce_account_id[:15]) for c in picked[:20]
        ],
        "Metronome ID": [lambda c=c: search(str(c.id)) for c in picked[:20]],
        "filters only, sorted by created": [
            lambda: search(
                filters=IndexFilters(billable=Billable.UNBILLABLE), sort=Sort.CREATED_DESC
            )
        ],
    }
    results = {}
    for kind, queries in kinds.items():
        for query in queries:  # warm-up
            query()
        timings = []
        for _ in range(repeats):
            for query in queries:
                started = time.perf_counter()
                query()
                timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        results[kind] = {
            "p50": statistics.median(timings),
            "p99": timings[min(len(timings) - 1, int(len(timings) * 0.99))],
            "runs": len(timings),
        }
    print(json.dumps(results))


def search_latency(env: dict[str, str], repeats: int) -> dict[str, dict[str, float]]:
    output, _ = run_process(
        [sys.executable, __file__, "--role", "search", "--repeats", str(repeats)], env
    )
    return json.loads(output.strip().splitlines()[-1])


# --- The driver --------------------------------------------------------------------------------


def run(quick: bool) -> str:
    customers = 2_000 if quick else 100_000
    runs = 1 if quick else 3
    repeats = 3 if quick else 10
    lines = ["## Customer index", ""]
    databases = [("SQLite", None)]
    if os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        databases.append(("PostgreSQL", os.environ["DATABASE_URL"]))

    with (
        tempfile.TemporaryDirectory(prefix="index-bench-") as tmp,
        sandbox_server(customers) as url,
    ):
        lines += [
            f"Sandbox server: {customers:,} customers (active and archived) in its own process; "
            f"{os.cpu_count()} CPUs; median of {runs} run(s).",
            "",
            "| | database | wall | vs plain loop | peak RSS |",
            "|---|---|---:|---:|---:|",
        ]
        plain_paging(url)  # the sandbox encodes each customer's JSON on first use
        plain_times = []
        for _ in range(runs):
            started = time.perf_counter()
            listed = plain_paging(url)
            plain_times.append(time.perf_counter() - started)
        plain = statistics.median(plain_times)
        lines.append(f"| plain httpx paging loop ({listed:,}) | - | {plain:.2f}s | 1.00x | - |")

        latencies = {}
        resync_ratios: dict[str, float] = {}
        for label, database_url in databases:
            with contextlib.ExitStack() as stack:
                if database_url is None:
                    database_url = f"sqlite:///{tmp}/index.sqlite3"
                else:
                    database_url = stack.enter_context(scratch_postgres(database_url))
                env = django_env(url, database_url)
                first_times, again_times, peaks = [], [], []
                for _ in range(runs):
                    if database_url.startswith("sqlite"):
                        Path(database_url.removeprefix("sqlite:///")).unlink(missing_ok=True)
                    else:
                        run_process([*MANAGE, "flush", "--noinput"], env)
                    run_process([*MANAGE, "migrate", "--noinput"], env)
                    seconds, peak = timed_sync(env)
                    first_times.append(seconds)
                    peaks.append(peak)
                    seconds, peak = timed_sync(env)
                    again_times.append(seconds)
                    peaks.append(peak)
                resync_ratios[label] = statistics.median(again_times) / plain
                for what, times in (
                    ("first sync", first_times),
                    ("sync, nothing changed", again_times),
                ):
                    wall = statistics.median(times)
                    lines.append(
                        f"| {what} | {label} | {wall:.2f}s | {wall / plain:.2f}x | "
                        f"{max(peaks) / 1024:.0f} MB |"
                    )
                print("\n".join(lines), file=sys.stderr)  # so far, in case searches fail
                latencies[label] = search_latency(env, repeats)

    lines += ["", f"Search at {customers:,} customers, ms (goal: p50 under 20 ms):", ""]
    header = "| query | " + " | ".join(f"{label} p50 | {label} p99" for label in latencies) + " |"
    lines += [header, "|---|" + "---:|" * (2 * len(latencies))]
    for kind in next(iter(latencies.values())):
        cells = " | ".join(
            f"{latencies[label][kind]['p50']:.1f} | {latencies[label][kind]['p99']:.1f}"
            for label in latencies
        )
        lines.append(f"| {kind} | {cells} |")
    goals = [
        [
            f"sync of {customers:,} customers (nothing changed), {label}, ≤ 1.3x paging",
            f"{ratio:.2f}x",
            verdict(ratio <= 1.3),
        ]
        for label, ratio in resync_ratios.items()
    ]
    for label, kinds in latencies.items():
        worst_kind = max(kinds, key=lambda kind: kinds[kind]["p50"])
        worst = kinds[worst_kind]["p50"]
        goals.append(
            [
                f"search p50 < 20 ms at {customers:,} customers, {label} (slowest query kind)",
                f"{worst:.1f} ms ({worst_kind})",
                verdict(worst < 20),
            ]
        )
    lines += ["", table(["goal", "measured", ""], goals)]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 customers, one run")
    parser.add_argument("--role", choices=["search"])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    if args.role == "search":
        return role_search(args.repeats)
    print(run(args.quick))


if __name__ == "__main__":
    main()
