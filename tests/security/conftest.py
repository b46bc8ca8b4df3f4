"""Fixtures the security tests share: users in each group, the sandbox, a Metronome that
refuses every call, PostgreSQL's refusal of NUL characters, and fast password hashing."""

from collections.abc import Iterator

import httpx
import pytest
from django.contrib.auth.models import User
from django.db import DataError, connection

from customers.sandbox import SandboxAPI
from tests.factories import PASSWORD, make_user


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Each login attempt hashes a password; PBKDF2's default rounds would make this file slow.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def sandbox(install_sandbox) -> SandboxAPI:
    return install_sandbox(300)


@pytest.fixture
def metronome_calls(install_client) -> list[httpx.Request]:
    """A Metronome client that records, and refuses, every call."""
    calls: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("this test must not call Metronome", request=request)

    install_client(httpx.MockTransport(refuse))
    return calls


@pytest.fixture
def support_user(db) -> User:
    return make_user("sam", "Support")


@pytest.fixture
def finance_user(db) -> User:
    return make_user("fiona", "Finance")


@pytest.fixture
def superuser(db) -> User:
    return User.objects.create_superuser("root", password=PASSWORD)


@pytest.fixture
def postgres_rules(db) -> Iterator[None]:
    """Tests run on SQLite, production on PostgreSQL, which refuses NUL characters in text
    and JSON: any that reaches the database there is a 500. Refuse them here as it would."""

    def refuse_nul(execute, sql, params, many, context):
        rows = params if many else [params]
        for row in rows or []:
            values = row.values() if isinstance(row, dict) else row or []
            for value in values:
                if isinstance(value, str) and ("\x00" in value or "\\u0000" in value):
                    raise DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(refuse_nul):
        yield
