"""How much the customers page adds on top of Metronome: render time and HTML size.

    .venv/bin/python bench/profile_table.py [--rows 100] [--runs 50] [--profile]

In one process, on the in-process sandbox (no sockets, no latency), it alternates:
- **api**: the service call the page makes (`search.search`, 100 rows);
- **page**: `GET /customers/?limit=100` as htmx asks for it (the results region), through
  Django's test client with every middleware and a signed-in Support user (SQLite session).
The page includes the API call, so `page - api` is what the dashboard adds. It reports the
medians, the p99 and the fragment's size; `--profile` prints cProfile's top functions of
the page requests.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--profile", action="store_true", help="cProfile's top 25 by own time")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="profile-table-")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="dashboard.settings",
        DEBUG="false",
        SECRET_KEY="profile-table-only",  # noqa: S106 (a throwaway process)
        ALLOWED_HOSTS="testserver",
        SECURE_SSL_REDIRECT="false",
        METRONOME_BEARER_TOKEN="",
        METRONOME_SANDBOX="true",
        METRONOME_BASE_URL="",
        DATABASE_URL=f"sqlite:///{workdir}/db.sqlite3",
        CACHE_URL="",
        LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.test import Client

    from customers import metronome, search, wiring

    call_command("migrate", verbosity=0)
    user = User.objects.create_user("support")
    user.groups.add(Group.objects.get(name="Support"))
    browser = Client()
    browser.force_login(user)
    service = wiring.get_client()
    url = f"/customers/?limit={args.rows}"

    def page() -> bytes:
        response = browser.get(url, headers={"HX-Request": "true"})
        assert response.status_code == 200, response.status_code
        return response.content

    def api() -> None:
        search.search(service, metronome.CustomerQuery(), limit=args.rows)

    html = page()  # warm-up: template loading, the sandbox's JSON cache
    api()
    # Wall time, and this process's CPU time: the steadier figure on a busy machine.
    page_times, api_times, page_cpu, api_cpu = [], [], [], []
    for _ in range(args.runs):
        for run, times, cpu in ((page, page_times, page_cpu), (api, api_times, api_cpu)):
            started, started_cpu = time.perf_counter(), time.process_time()
            run()
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)

    def p99(values: list[float]) -> float:
        return statistics.quantiles(values, n=100)[98]

    overheads = [p - a for p, a in zip(page_times, api_times, strict=True)]
    print(f"{args.rows} rows, {args.runs} runs, {os.cpu_count()} CPUs")
    print(f"api call        median {statistics.median(api_times):6.1f} ms")
    print(f"page (fragment) median {statistics.median(page_times):6.1f} ms")
    print(
        f"page overhead   median {statistics.median(overheads):6.1f} ms"
        f"   p99 {p99(overheads):6.1f} ms"
    )
    cpu_overheads = [p - a for p, a in zip(page_cpu, api_cpu, strict=True)]
    print(f"page overhead   median {statistics.median(cpu_overheads):6.1f} ms CPU")
    print(f"fragment HTML   {len(html) / 1024:6.1f} KB")

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(10):
            page()
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        print(out.getvalue())


if __name__ == "__main__":
    main()
