"""Paging every customer: the service's `MetronomeClient.iter_pages` against a plain httpx
loop and the official `metronome-sdk` auto-pager, over the same sandbox server."""

from __future__ import annotations

from bench.harness import (
    PAGE_SANDBOX_CUSTOMERS,
    QUICK_SANDBOX_CUSTOMERS,
    Sandbox,
    alternate,
    median,
    sandbox,
    table,
    verdict,
)


def contenders(sandbox_: Sandbox) -> dict:
    from metronome import Metronome

    from customers.metronome import CustomerQuery, MetronomeClient

    service = MetronomeClient(base_url=sandbox_.url, bearer_token=sandbox_.token)
    sdk = Metronome(bearer_token=sandbox_.token, base_url=sandbox_.url)
    plain_http = sandbox_.client()

    def through_service() -> int:
        return sum(len(page.customers) for page in service.iter_pages(CustomerQuery()))

    def plain_loop() -> int:
        count, params = 0, {"only_archived": "false", "limit": "100"}
        while True:
            body = plain_http.get("/v1/customers", params=params).raise_for_status().json()
            count += len(body["data"])
            if not body["next_page"]:
                return count
            params["next_page"] = body["next_page"]

    def sdk_auto_pager() -> int:
        return sum(1 for _ in sdk.v1.customers.list(limit=100, only_archived=False))

    return {"service": through_service, "plain": plain_loop, "sdk": sdk_auto_pager}


def run(quick: bool) -> str:
    customers = QUICK_SANDBOX_CUSTOMERS if quick else PAGE_SANDBOX_CUSTOMERS
    rounds = 2 if quick else 7
    with sandbox(customers) as sandbox_:
        runners = contenders(sandbox_)
        counts = {name: runner() for name, runner in runners.items()}  # warm-up
        if len(set(counts.values())) != 1:
            raise RuntimeError(f"the contenders paged different customers: {counts}")
        cpu: dict[str, list[float]] = {}
        times = alternate(runners, rounds, cpu)
    medians = {name: median(values) for name, values in times.items()}
    cpu_medians = {name: median(values) for name, values in cpu.items()}
    service_vs_plain = medians["service"] / medians["plain"]
    sdk_vs_service = medians["sdk"] / medians["service"]
    labels = {
        "plain": "plain httpx loop (`response.json()`)",
        "service": "**`MetronomeClient.iter_pages`** (typed `Customer`s, checked)",
        "sdk": "official `metronome-sdk` auto-pager",
    }
    rows = [
        [
            labels[name],
            f"{medians[name] * 1000:.0f}",
            f"{medians[name] / medians['plain']:.2f}x",
            f"{cpu_medians[name] * 1000:.0f}",
            f"{cpu_medians[name] / cpu_medians['plain']:.2f}x",
            ", ".join(f"{t * 1000:.0f}" for t in times[name]),
        ]
        for name in ("plain", "service", "sdk")
    ]
    return (
        "## Paging every customer\n\n"
        f"Every active customer ({counts['service']:,}, 100 per page, "
        f"{-(-counts['service'] // 100)} pages) from `manage.py run_sandbox` in its own "
        f"process, API latency 0; one warm-up each, then {rounds} rounds alternating. CPU = "
        "the benchmark process's CPU time, all threads: on a busy machine it holds steady "
        "where wall time waits for a core. The verdicts use wall time.\n\n"
        + table(["", "median ms", "÷ plain", "median CPU ms", "CPU ÷ plain", "ms per round"], rows)
        + "\n\n"
        + table(
            ["goal", "measured", ""],
            [
                [
                    "service within 1.3x of the plain loop",
                    f"{service_vs_plain:.2f}x "
                    f"(CPU: {cpu_medians['service'] / cpu_medians['plain']:.2f}x)",
                    verdict(service_vs_plain <= 1.3),
                ],
                [
                    "service at least 4x faster than the SDK",
                    f"{sdk_vs_service:.1f}x "
                    f"(CPU: {cpu_medians['sdk'] / cpu_medians['service']:.1f}x)",
                    verdict(sdk_vs_service >= 4),
                ],
            ],
        )
    )
