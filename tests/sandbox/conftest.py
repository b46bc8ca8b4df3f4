"""Fixtures the sandbox's tests share: its generated customers, active and archived, and a
fresh in-process API."""

from typing import Any

import pytest

from customers.sandbox import SandboxAPI, generate_customers
from tests.factories import is_archived


@pytest.fixture(scope="module")
def customers() -> list[dict[str, Any]]:
    return generate_customers()


@pytest.fixture
def api() -> SandboxAPI:
    return SandboxAPI()


@pytest.fixture
def active(customers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in customers if not is_archived(c)]


@pytest.fixture
def archived(customers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in customers if is_archived(c)]
