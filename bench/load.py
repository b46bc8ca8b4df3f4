"""Load generator, run in its own process: N threads, each a signed-in keep-alive client
that requests one URL back to back for a fixed time.

    python bench/load.py URL --cookie SESSION --clients 20 --seconds 10

Prints one JSON line: completed requests, errors (non-200 or transport failures), seconds.
It shares the machine's cores with the server it loads, as the report says.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import httpx


def hammer(url: str, cookie: str, until: float, counts: dict[str, int], lock: threading.Lock):
    ok = errors = 0
    with httpx.Client(headers={"Cookie": f"sessionid={cookie}"}, timeout=30) as client:
        while time.perf_counter() < until:
            try:
                response = client.get(url)
                if response.status_code == 200:
                    ok += 1
                else:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
    with lock:
        counts["ok"] += ok
        counts["errors"] += errors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--cookie", required=True)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    counts = {"ok": 0, "errors": 0}
    lock = threading.Lock()
    started = time.perf_counter()
    until = started + args.seconds
    threads = [
        threading.Thread(target=hammer, args=(args.url, args.cookie, until, counts, lock))
        for _ in range(args.clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    print(json.dumps({**counts, "seconds": elapsed, "per_second": counts["ok"] / elapsed}))


if __name__ == "__main__":
    main()
