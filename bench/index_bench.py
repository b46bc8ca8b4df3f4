"""Benchmark of the customer index (issue 24): `manage.py sync_customers` against a plain
httpx paging loop, and the search's latency for every query kind, at 100,000 customers on
SQLite and PostgreSQL, and at 1,000,000 on PostgreSQL.

    .venv/bin/python bench/index_bench.py [--quick]
    .venv/bin/python bench/index_bench.py --customers 1000000 --databases postgresql --runs 1

`run(quick)` returns the results as a Markdown section (`make bench` prints it): 100,000
customers, and 1,000,000 as well when DATABASE_URL names PostgreSQL (INDEX_BENCH_MILLION=0
leaves that out: it takes several minutes). The sandbox server runs in its own process
(`manage.py run_sandbox`), so its CPU does not share the GIL with the client. The plain loop
pages both listings (active, then archived) with limit=100 and decodes every page's JSON,
which is the least any sync must do. Each sync runs `manage.py sync_customers` in a fresh
process on a fresh database: the first sync inserts everything, the second finds nothing
changed; its time is the one the command reports (Django's start-up left out), its memory
the process's peak RSS and how far that grew over the RSS before the sync started. Plain
loop and syncs alternate, and each sync is compared with the median plain loop.

The searches run in one process against the synced index: SQLite, and PostgreSQL when
DATABASE_URL names one (a scratch database `<name>_bench` is created beside it and dropped
after). Each query kind runs repeatedly; p50 and p99 are over all its runs.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import miss_note, percentile, table, verdict  # noqa: E402  (after the path the script needs)
from bench.scratch_db import scratch_postgres  # noqa: E402

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
    """Production settings (DEBUG off: with it on, Django keeps every query and its
    parameters, which once cost a sync more than its own work), the sandbox for Metronome."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-" + "x" * 50,
        "ALLOWED_HOSTS": "127.0.0.1",
        "METRONOME_SANDBOX": "true",
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


# The sync's own peak is VmHWM, its address space's high-water mark. Not getrusage's
# ru_maxrss: Linux carries the parent's peak into a child started by vfork and exec, so every
# sync read as this driver's peak (130 MB in every row, whatever the sync did).
SYNC_WITH_PEAK = (
    "import re, django; django.setup();"
    "from django.core.management import call_command;"
    "from django.core.management import load_command_class;"
    "load_command_class('customers', 'sync_customers');"
    "kib = lambda field: re.search(field + r':\\s+(\\d+)', open('/proc/self/status').read())[1];"
    "print('before_rss_kib=%s' % kib('VmRSS'));"
    "call_command('sync_customers');"
    "print('peak_rss_kib=%s' % kib('VmHWM'))"
)


@dataclass(frozen=True)
class SyncTiming:
    seconds: float
    peak_kib: int
    growth_kib: int  # peak RSS over the RSS before the sync started
    phases: dict[str, float]  # seconds of each step the sync logs (SYNC_PHASES)


# The steps a sync logs at INFO (customers/index/sync.py, staging.py), by what they do: the
# profile of a missed sync goal.
SYNC_PHASES = {
    "listing: paging, each customer's row built and staged": r"customers listed in ([0-9.]+)s",
    "swap: rows moved in, indexes built, statistics": r"swapped in ([0-9.]+)s",
    "typo dictionary (name words) rebuilt": r"name words rebuilt in ([0-9.]+)s",
    "vacuum": r"vacuumed in ([0-9.]+)s",
}


def timed_sync(env: dict[str, str]) -> SyncTiming:
    """One sync as the command reports it, with the process's peak RSS and its growth, and
    the time of each step it logs."""
    output, peak = run_process([sys.executable, "-c", SYNC_WITH_PEAK], {**env, "LOG_LEVEL": "INFO"})
    match = re.search(r"synced in ([0-9.]+)s", output)
    before = re.search(r"before_rss_kib=(\d+)", output)
    if not match or not before:
        raise SystemExit(f"unexpected sync output: {output!r}")
    phases = {
        phase: float(found[1])
        for phase, pattern in SYNC_PHASES.items()
        if (found := re.search(pattern, output))
    }
    return SyncTiming(float(match[1]), peak, peak - int(before[1]), phases)


# --- Search latency (runs in a child with Django set up) ---------------------------------------

# Issue 24's goals: every query kind, p50 and p99, in ms.
GOALS = {100_000: (15.0, 50.0), 1_000_000: (50.0, 200.0)}
RESYNC_GOAL = 1.5  # x the plain loop, nothing changed
FIRST_SYNC_GOAL = 2.0  # x the plain loop, at 100,000
RSS_GROWTH_GOAL_MB = 100  # at 1,000,000


def search_kinds() -> dict[str, list[Callable[[], object]]]:
    """Each query kind the issue names, a few queries each, drawn from the indexed names."""
    from customers.index.search import Archived, Billable, IndexFilters, Sort, search
    from customers.models import IndexedCustomer

    sample = IndexedCustomer.objects.exclude(salesforce_account_id="").order_by("id")[:200]
    picked = list(sample)
    first_words = sorted({c.name.split()[0] for c in picked if len(c.name.split()[0]) >= 5})[:20]
    two_words = [" ".join(reversed(c.name.split()[:2])) for c in picked if len(c.name.split()) > 1]
    unbillable = IndexFilters(billable=frozenset({Billable.UNBILLABLE}))
    archived = IndexFilters(archived=Archived.ARCHIVED)
    return {
        "name, one word": [lambda w=w: search(w) for w in first_words],
        "name, two words reversed": [lambda w=w: search(w) for w in two_words[:20]],
        "name, partial word": [lambda w=w: search(w[:4]) for w in first_words],
        "misspelt name": [lambda w=w: search(w[:2] + w[3] + w[2] + w[4:]) for w in first_words],
        "misspelt name, two words": [
            lambda w=w: search(w[:-2] + w[-1] + w[-2]) for w in two_words[:10]
        ],
        "Salesforce ID (15 chars)": [
            lambda c=c: search(c.salesforce_account_id[:15]) for c in picked[:20]
        ],
        "Metronome ID": [lambda c=c: search(str(c.id)) for c in picked[:20]],
        "filters only (unbillable)": [lambda: search(filters=unbillable)],
        "sorted by created, newest first": [lambda: search(sort=Sort.CREATED_DESC)],
        "filters and sort (unbillable, by created)": [
            lambda: search(filters=unbillable, sort=Sort.CREATED_DESC)
        ],
        "deep page (rows 9,951-10,000 by name)": [lambda: search(page=200, per_page=50)],
        "archived, page 50": [lambda: search(filters=archived, page=50, per_page=50)],
    }


def role_search(repeats: int, only: str | None = None) -> None:
    import django

    django.setup()
    results = {}
    for kind, queries in search_kinds().items():
        if only and only not in kind:
            continue
        for query in queries:  # warm-up
            query()
        timings: list[float] = []
        # At least 100 runs of each kind, unless a kind is so slow that 20 s pass first.
        rounds = max(repeats, 100 // len(queries))
        deadline = time.perf_counter() + 20
        for _ in range(rounds):
            if timings and time.perf_counter() > deadline:
                break
            for query in queries:
                started = time.perf_counter()
                query()
                timings.append((time.perf_counter() - started) * 1000)
        results[kind] = {
            "p50": statistics.median(timings),
            "p99": percentile(timings, 0.99),
            "runs": len(timings),
        }
    print(json.dumps(results))


def search_latency(env: dict[str, str], repeats: int) -> dict[str, dict[str, float]]:
    output, _ = run_process(
        [sys.executable, __file__, "--role", "search", "--repeats", str(repeats)], env
    )
    return dict(json.loads(output.strip().splitlines()[-1]))


# --- The driver --------------------------------------------------------------------------------


@dataclass
class SizeResult:
    customers: int
    listed: int
    plain: list[float]
    first: dict[str, list[SyncTiming]]
    again: dict[str, list[SyncTiming]]
    latencies: dict[str, dict[str, dict[str, float]]]


def measure(
    customers: int, databases: list[tuple[str, str | None]], runs: int, repeats: int
) -> SizeResult:
    """Plain loop and syncs alternated on one sandbox, then the searches, per database."""
    result = SizeResult(customers, 0, [], {}, {}, {})
    with (
        tempfile.TemporaryDirectory(prefix="index-bench-") as tmp,
        sandbox_server(customers) as url,
    ):
        plain_paging(url)  # the sandbox encodes each customer's JSON on first use

        def plain_once() -> None:
            started = time.perf_counter()
            result.listed = plain_paging(url)
            result.plain.append(time.perf_counter() - started)

        for label, database_url in databases:
            with contextlib.ExitStack() as stack:
                if database_url is None:
                    database_url = f"sqlite:///{tmp}/index.sqlite3"
                else:
                    scratch = f"{database_url.rpartition('/')[2].split('?')[0]}_bench"
                    database_url = stack.enter_context(scratch_postgres(database_url, scratch))
                env = django_env(url, database_url)
                for _ in range(runs):
                    if database_url.startswith("sqlite"):
                        Path(database_url.removeprefix("sqlite:///")).unlink(missing_ok=True)
                    else:
                        run_process([*MANAGE, "flush", "--noinput"], env)
                    run_process([*MANAGE, "migrate", "--noinput"], env)
                    plain_once()
                    result.first.setdefault(label, []).append(timed_sync(env))
                    plain_once()
                    result.again.setdefault(label, []).append(timed_sync(env))
                print(f"{label} at {customers:,}: synced", file=sys.stderr)
                result.latencies[label] = search_latency(env, repeats)
    return result


def section(result: SizeResult, runs: int) -> tuple[list[str], list[list[str]]]:
    """The tables of one size, and its goal rows."""
    customers = result.customers
    plain = statistics.median(result.plain)
    lines = [
        f"### {customers:,} customers",
        "",
        f"Sandbox server: {customers:,} customers (active and archived) in its own process; "
        f"{os.cpu_count()} CPUs; median of {runs} run(s), plain loop and syncs alternated.",
        "",
        "| | database | wall | vs plain loop | peak RSS | RSS growth |",
        "|---|---|---:|---:|---:|---:|",
        f"| plain httpx paging loop ({result.listed:,}) | - | {plain:.2f}s | 1.00x | - | - |",
    ]
    goals: list[list[str]] = []
    first_sync_misses: list[str] = []
    search_goals = GOALS.get(customers, GOALS[100_000])
    for label in result.first:
        for what, timings in (
            ("first sync", result.first[label]),
            ("sync, nothing changed", result.again[label]),
        ):
            wall = statistics.median(t.seconds for t in timings)
            peak = max(t.peak_kib for t in timings) / 1024
            growth = max(t.growth_kib for t in timings) / 1024
            lines.append(
                f"| {what} | {label} | {wall:.2f}s | {wall / plain:.2f}x | "
                f"{peak:.0f} MB | {growth:.0f} MB |"
            )
        resync = statistics.median(t.seconds for t in result.again[label]) / plain
        goals.append(
            [
                f"sync of {customers:,} unchanged customers, {label}, ≤ {RESYNC_GOAL}x paging",
                f"{resync:.2f}x",
                verdict(resync <= RESYNC_GOAL),
            ]
        )
        if customers < 1_000_000:
            first = statistics.median(t.seconds for t in result.first[label]) / plain
            goals.append(
                [
                    f"first sync of {customers:,} customers, {label}, ≤ {FIRST_SYNC_GOAL}x paging",
                    f"{first:.2f}x",
                    verdict(first <= FIRST_SYNC_GOAL),
                ]
            )
            if first > FIRST_SYNC_GOAL:
                first_sync_misses.append(label)
        else:
            growth = max(t.growth_kib for t in result.first[label] + result.again[label]) / 1024
            goals.append(
                [
                    f"sync of {customers:,} customers, {label}, peak RSS growth "
                    f"< {RSS_GROWTH_GOAL_MB} MB",
                    f"{growth:.0f} MB",
                    verdict(growth < RSS_GROWTH_GOAL_MB),
                ]
            )
    if first_sync_misses:
        lines += ["", *_first_sync_miss(result, first_sync_misses, plain)]
    latencies = result.latencies
    p50_goal, p99_goal = search_goals
    lines += [
        "",
        f"Search at {customers:,} customers, ms (goals: p50 under {p50_goal:.0f} ms, "
        f"p99 under {p99_goal:.0f} ms, every kind):",
        "",
        "| query | " + " | ".join(f"{label} p50 | {label} p99" for label in latencies) + " |",
        "|---|" + "---:|" * (2 * len(latencies)),
    ]
    for kind in next(iter(latencies.values())):
        cells = " | ".join(
            f"{latencies[label][kind]['p50']:.1f} | {latencies[label][kind]['p99']:.1f}"
            for label in latencies
        )
        lines.append(f"| {kind} | {cells} |")
    for label, kinds in latencies.items():
        for stat, goal in (("p50", p50_goal), ("p99", p99_goal)):
            worst_kind = max(kinds, key=lambda kind: kinds[kind][stat])
            worst = kinds[worst_kind][stat]
            goals.append(
                [
                    f"search {stat} < {goal:.0f} ms at {customers:,} customers, {label} "
                    "(slowest query kind)",
                    f"{worst:.1f} ms ({worst_kind})",
                    verdict(worst < goal),
                ]
            )
    return lines, goals


def _first_sync_miss(result: SizeResult, labels: list[str], plain: float) -> list[str]:
    """Where a first sync's time went, step by step, beside the unchanged resync's, and what
    meeting 2x paging would take: the profile of that missed goal, from this run."""

    def step(timings: list[SyncTiming], phase: str | None) -> float:
        if phase is None:  # what no logged step covers: counting, bookkeeping
            return statistics.median(max(t.seconds - sum(t.phases.values()), 0) for t in timings)
        return statistics.median(t.phases.get(phase, 0.0) for t in timings)

    header = ["step (medians, s)"]
    for label in labels:
        header += [f"{label} first sync", f"{label} unchanged"]
    rows = []
    for phase in [*SYNC_PHASES, None]:
        row = [phase or "the rest: counting, bookkeeping"]
        for label in labels:
            row += [
                f"{step(timings, phase):.2f}"
                for timings in (result.first[label], result.again[label])
            ]
        rows.append(row)
    listing, swap, words = list(SYNC_PHASES)[:3]
    worded = []
    for label in labels:
        first, again = result.first[label], result.again[label]
        worded.append(
            f"on {label}, listing took {step(first, listing):.1f} s "
            f"({step(first, listing) / plain:.1f}x paging; {step(again, listing):.1f} s when "
            f"nothing changed), the swap {step(first, swap):.1f} s and the typo dictionary "
            f"{step(first, words):.1f} s"
        )
    goal = FIRST_SYNC_GOAL * plain
    if all(step(result.first[label], listing) <= goal for label in labels):
        needed = (
            "Listing alone fits; meeting the goal would take the index builds and the typo "
            "dictionary moved out of the sync (made after it, with searches on a slower "
            "path until they exist)."
        )
    else:
        needed = (
            "Meeting the goal would take both: staging at paging's pace, and the index "
            "builds and the typo dictionary moved out of the sync (made after it, with "
            "searches on a slower path until they exist)."
        )
    return [
        miss_note(
            f"a first sync within {FIRST_SYNC_GOAL}x paging",
            f"Each step as the sync logged it (plain paging: {plain:.2f} s):\n\n"
            + table(header, rows),
            f"{FIRST_SYNC_GOAL}x paging is {goal:.2f} s here; {'; '.join(worded)}. What a "
            "first sync adds to listing is building and staging every customer's row (on "
            "SQLite with its text-index entry), which the unchanged resync skips; its swap "
            f"builds every index of a full table. {needed}",
        )
    ]


def postgres_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else None


def report(sizes: list[tuple[int, list[tuple[str, str | None]]]], runs: int, repeats: int) -> str:
    lines = ["## Customer index", ""]
    goals: list[list[str]] = []
    for customers, databases in sizes:
        size_lines, size_goals = section(measure(customers, databases, runs, repeats), runs)
        lines += [*size_lines, ""]
        goals += size_goals
        print("\n".join(size_lines), file=sys.stderr)  # so far, in case a later size fails
    lines += [table(["goal", "measured", ""], goals)]
    return "\n".join(lines) + "\n"


def run(quick: bool) -> str:
    postgres = postgres_url()
    databases: list[tuple[str, str | None]] = [("SQLite", None)]
    if postgres:
        databases.append(("PostgreSQL", postgres))
    if quick:
        return report([(2_000, databases)], runs=1, repeats=3)
    sizes = [(100_000, databases)]
    if postgres and os.environ.get("INDEX_BENCH_MILLION", "1") != "0":
        sizes.append((1_000_000, [("PostgreSQL", postgres)]))
    return report(sizes, runs=3, repeats=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 customers, one run")
    parser.add_argument("--customers", type=int, help="one size only, e.g. 1000000")
    parser.add_argument(
        "--databases", default="sqlite,postgresql", help="with --customers: which of them"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--role", choices=["search"])
    parser.add_argument("--only", help="with --role search: the query kinds containing this")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    if args.role == "search":
        return role_search(args.repeats, args.only)
    if args.customers:
        wanted = args.databases.split(",")
        databases: list[tuple[str, str | None]] = []
        if "sqlite" in wanted:
            databases.append(("SQLite", None))
        if "postgresql" in wanted and (postgres := postgres_url()):
            databases.append(("PostgreSQL", postgres))
        print(report([(args.customers, databases)], args.runs, args.repeats))
        return
    print(run(args.quick))


if __name__ == "__main__":
    main()
