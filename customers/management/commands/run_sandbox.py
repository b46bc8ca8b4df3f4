"""`python manage.py run_sandbox`: the sandbox API on a port, for the SDK, curl or a demo."""

from __future__ import annotations

import argparse
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from customers.sandbox import (
    SANDBOX_TOKEN,
    Faults,
    SandboxAPI,
    SandboxServer,
    generate_customers,
)
from customers.sandbox.data import DEFAULT_COUNT, DEFAULT_SEED
from customers.sandbox.faults import ENDPOINTS


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0:  # also rejects NaN
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _default_customer_count() -> int:
    # Same size as the in-process sandbox, so both show the same data for one seed.
    try:
        return int(getattr(settings, "SANDBOX_CUSTOMERS", DEFAULT_COUNT))
    except ImproperlyConfigured:
        return DEFAULT_COUNT


class Command(BaseCommand):
    help = (
        "Serve the Metronome sandbox API (GET /v1/customers) over HTTP, with optional "
        "injected latency, failures, rate limits and empty pages."
    )
    # The sandbox touches neither the database nor the rest of the project.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address to bind.")
        parser.add_argument("--port", type=_non_negative_int, default=8001, help="0 = any.")
        parser.add_argument(
            "--customers",
            type=_positive_int,
            default=None,
            help=f"How many customers to generate (default: SANDBOX_CUSTOMERS or {DEFAULT_COUNT}).",
        )
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="Data seed.")
        parser.add_argument("--token", default=SANDBOX_TOKEN, help="Bearer token to accept.")
        parser.add_argument(
            "--latency-ms", type=_non_negative_float, default=0.0, help="Delay every answer."
        )
        parser.add_argument(
            "--fail-every", type=_non_negative_int, default=0, help="Fail every Nth request."
        )
        parser.add_argument(
            "--fail-status", type=int, default=503, help="Status of injected failures."
        )
        parser.add_argument(
            "--rate-limit-every",
            type=_non_negative_int,
            default=0,
            help="Answer 429 to every Nth request.",
        )
        parser.add_argument(
            "--retry-after",
            type=_non_negative_float,
            default=1.0,
            help="Seconds the 429 answers ask clients to wait.",
        )
        parser.add_argument(
            "--empty-page-every",
            type=_non_negative_int,
            default=0,
            help="Answer every Nth list request with an empty page that has a next_page.",
        )
        parser.add_argument(
            "--fail-endpoint",
            action="append",
            default=[],
            choices=ENDPOINTS,
            help="Fail every request to this endpoint (repeat for more), e.g. usage.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            faults = Faults(
                latency_s=options["latency_ms"] / 1000,
                fail_every=options["fail_every"],
                fail_status=options["fail_status"],
                rate_limit_every=options["rate_limit_every"],
                retry_after_s=options["retry_after"],
                empty_page_every=options["empty_page_every"],
                failing_endpoints=tuple(options["fail_endpoint"]),
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        if not options["token"]:
            raise CommandError("--token must not be empty")

        count = options["customers"] or _default_customer_count()
        api = SandboxAPI(
            generate_customers(count, options["seed"]), token=options["token"], faults=faults
        )
        try:
            server = SandboxServer(api, host=options["host"], port=options["port"])
        except OSError as error:
            raise CommandError(
                f"cannot listen on {options['host']}:{options['port']}: {error}"
            ) from None

        self.stdout.write(
            f"Metronome sandbox: {count:,} customers (seed {options['seed']}) at {server.url}\n"
            f"Bearer token: {api.token}\n"
            f"Clients and the official SDK: METRONOME_BASE_URL={server.url} "
            f"METRONOME_BEARER_TOKEN={api.token}\n"
            f"Faults: {faults.to_dict()} (change them: GET/POST {server.url}/_sandbox/faults)\n"
            "Quit with CONTROL-C."
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            self.stdout.write("Sandbox stopped.")
        finally:
            server.stop()
