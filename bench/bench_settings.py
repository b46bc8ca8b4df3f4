"""The dashboard's own settings plus one bench-only page, so the product ships nothing for
the benchmarks: `DJANGO_SETTINGS_MODULE=bench.bench_settings`."""

import os

from dashboard.settings import *  # noqa: F403
from dashboard.settings import BASE_DIR, TEMPLATES

ROOT_URLCONF = "bench.bench_urls"
TEMPLATES[0]["DIRS"] = [*TEMPLATES[0]["DIRS"], BASE_DIR / "bench" / "templates"]
# Collected static files (DEBUG off reads their manifest) go to the benchmark's temporary
# directory, not the checkout's.
STATIC_ROOT = os.environ.get("BENCH_STATIC_ROOT") or BASE_DIR / "staticfiles"
