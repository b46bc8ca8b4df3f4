"""Where the customers page spends its time: cProfile over the page's requests, summarised.

The page runs in a child process with the benchmark's production settings (DEBUG off,
collected static files, a signed-in Finance user), through Django's test client so the
profile holds the request alone and no server code; the API is the sandbox server in its
own process, so its time shows as waiting on a socket.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE_PATH = "/customers/?limit=100"
TOP = 25


def _label(key: tuple[str, int, str]) -> str:
    filename, line, function = key
    if filename == "~":
        return function  # a built-in
    path = re.sub(r"^.*/lib/python3\.\d+/(site-packages/)?", "", filename)
    path = path.removeprefix(str(ROOT) + "/")
    return f"{path}:{line} {function}"


def child(session_key: str, requests: int) -> None:
    """Runs in the child process: profile `requests` page loads, print a JSON summary."""
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    client.cookies["sessionid"] = session_key

    def page() -> None:
        response = client.get(PAGE_PATH)
        assert response.status_code == 200, response.status_code
        # Read to the end: the page is streamed, its results made while the rest is sent.
        assert b'id="results"' in response.content

    for _ in range(5):
        page()
    started = time.perf_counter()
    for _ in range(requests):
        page()
    plain_ms = (time.perf_counter() - started) * 1000 / requests
    queries: list[str] = []
    queries_while_rendering: list[str] = []

    def record(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        sql = " ".join(sql.split())  # one line in the report
        queries.append(sql[:120])
        frame = sys._getframe(1)
        while frame is not None:
            if "/django/template/" in frame.f_code.co_filename:
                queries_while_rendering.append(sql[:120])
                break
            frame = frame.f_back
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        page()

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        page()
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    entries = stats.stats  # type: ignore[attr-defined]

    # The request and the reading of its streamed body (views._streamed_page: the results
    # are made while the page is read), one call of `page`; the frames above say nothing.
    view_key = next(
        key for key in entries if key[2] == "page" and key[0].endswith("profile_page.py")
    )
    view_cumulative = entries[view_key][3]

    def rows(sort_index: int) -> list[list]:
        ranked = sorted(
            (
                (key, value)
                for key, value in entries.items()
                if key == view_key or value[3] < view_cumulative
            ),
            key=lambda item: item[1][sort_index],
            reverse=True,
        )
        return [
            [
                _label(key),
                calls // requests,
                value[3] * 1000 / requests,
                value[2] * 1000 / requests,
                value[3] / total,
            ]
            for key, value in ranked[:TOP]
            for calls in [value[1]]
        ]

    print(
        json.dumps(
            {
                "plain_ms": plain_ms,
                "profiled_ms": total * 1000 / requests,
                "queries": queries,
                "queries_while_rendering": queries_while_rendering,
                "service": {
                    _label(key): value[3] * 1000 / requests
                    for key, value in entries.items()
                    # The search (a cached page makes no API call), the client, the rows.
                    if (key[0].endswith("customers/search.py") and key[2] == "search")
                    or ("customers/metronome/" in key[0] and key[2] in ("_get", "from_wire"))
                    or (key[0].endswith("customers/display.py") and key[2] == "customer_rows")
                },
                "cumulative": rows(3),
                "own": rows(2)[:15],
            }
        )
    )


def run(quick: bool) -> str:
    from bench.harness import (
        PAGE_SANDBOX_CUSTOMERS,
        QUICK_SANDBOX_CUSTOMERS,
        dashboard_env,
        prepare_database,
        run_json,
        sandbox,
        table,
        verdict,
    )

    requests = 3 if quick else 30
    customers = QUICK_SANDBOX_CUSTOMERS if quick else PAGE_SANDBOX_CUSTOMERS
    with sandbox(customers) as sandbox_, tempfile.TemporaryDirectory() as tmp:
        env = dashboard_env(sandbox_.url, Path(tmp))
        session = prepare_database(env)
        result = run_json(["bench/profile_page.py", session, str(requests)], env=env)

    def summary(rows: list[list]) -> str:
        return table(
            ["function", "calls per page", "cumulative ms", "own ms", "share of the page"],
            [
                [f"`{label}`", calls, f"{cum:.1f}", f"{own:.1f}", f"{share:.0%}"]
                for label, calls, cum, own, share in rows
            ],
        )

    queries = "; ".join(f"`{sql}`" for sql in result["queries"]) or "none"
    count, in_templates = len(result["queries"]), len(result["queries_while_rendering"])
    goals = table(
        ["goal", "measured", ""],
        [
            [
                "no database work while a template renders",
                f"{in_templates} queries",
                verdict(in_templates == 0),
            ],
            [
                # Without a shared cache (as here) the saved views are read afresh: a change
                # another worker made must show (docs/saved-views.md); with Redis, 1 query.
                "at most the session, user and saved-views queries (3) per page",
                f"{count} queries",
                verdict(count <= 3),
            ],
        ],
    )
    return "\n\n".join(
        [
            "## Where the time goes: the customers page",
            f"`GET {PAGE_PATH}` (100 rows, API latency 0) through Django's test client "
            f"with the production settings, {requests} requests after 5 warm-ups: "
            f"{result['plain_ms']:.1f} ms per page unprofiled, {result['profiled_ms']:.1f} "
            "ms under cProfile (the profiler's own overhead inflates call-heavy code, "
            "such as template rendering, the most). Times are per page.",
            "The service layer's share (the search, answered from the API page cache when the same "
            "page was fetched in the last 30 s; the API call, JSON and typed customers when not; "
            "the rows' display values): "
            + ", ".join(f"`{label}` {ms:.1f} ms" for label, ms in result["service"].items())
            + ".",
            f"Database queries per page ({count}): {queries}",
            goals,
            f"Top {TOP} by cumulative time, from the request (read to its end) down:",
            summary(result["cumulative"]),
            "Top 15 by own time (the code that runs, not what it calls):",
            summary(result["own"]),
        ]
    )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    child(sys.argv[1], int(sys.argv[2]))
