"""Hostile input, from people or from the API, never causes a 5xx or reflected markup and is
shown escaped rather than dropped."""

import re
import uuid
from urllib.parse import quote, urlencode

import httpx
import pytest
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from customers.sandbox import SandboxAPI, SandboxTransport
from tests.factories import EXPORT_URL, LIST_URL, body_of, client_for, markup_problems, text_of

pytestmark = pytest.mark.django_db


# --- Hostile input ------------------------------------------------------------------------------

XSS = (
    '<script>alert("xss")</script>',
    '"><img src=x onerror=alert(1)>',
    "'><svg/onload=alert(1)>",
    "javascript:alert(1)",
    "</textarea><script>alert(2)</script>",
)
REFLECTIONS = ("<script>alert", "<img src=x", "<svg/onload", "</textarea><script")
MANY_UUIDS = ",".join(str(uuid.UUID(int=n)) for n in range(5000))
MANY_SALESFORCE_IDS = "\n".join(f"001A{n:014d}" for n in range(5000))
FIELDS = (
    "customer_ids",
    "salesforce_account_ids",
    "ingest_alias",
    "only_archived",
    "limit",
    "next_page",
    "prev",
    "search",
)


def each_field(value: str) -> list[str]:
    return [urlencode({field: value}) for field in FIELDS]


def reflected_fields(value: str) -> list[str]:
    """Every field at once (each one's form error is shown), and alone in the fields that
    reach the page only when the rest of the form is valid (links, the saved search)."""
    return [urlencode([(field, value) for field in FIELDS])] + [
        urlencode({field: value}) for field in ("ingest_alias", "next_page", "prev", "search")
    ]


HOSTILE_QUERIES = [
    f"customer_ids={quote(MANY_UUIDS)}",
    f"salesforce_account_ids={quote(MANY_SALESFORCE_IDS)}",
    "ingest_alias=" + "A" * 200_000,
    "next_page=" + "c" * 100_000,
    "search=" + "s" * 10_000,
    "prev=" + "&prev=".join(["p" * 1999] * 900) + "&next_page=x",
    "prev=" + "&prev=".join(["p"] * 1100),  # more fields than Django accepts: 400
    "limit=10&limit=20&limit=abc&only_archived=true&only_archived=maybe",
    "customer_ids=" + "&customer_ids=".join(str(uuid.UUID(int=n)) for n in range(50)),
    "limit=99999999999999999999999999",
    "limit=-1",
    "limit=0",
    "limit=101",
    "limit=1e3",
    "only_archived=maybe",
    "%",
    "a=%zz&limit=%ff%fe",
    "ingest_alias=%ED%A0%80",  # a lone surrogate, as UTF-8
    "ingest_alias=%C0%BC",  # overlong '<'
    *each_field("a\x00b"),
    urlencode([(field, "\x00") for field in FIELDS]),
    *[q for value in XSS for q in reflected_fields(value)],
    *[
        urlencode([(field, value) for field in FIELDS])
        for value in (
            "\u202eevil\u202c",  # right-to-left override
            "🚀" * 500,
            "e" + "\u0301" * 5000,  # combining marks
            "\ufeff\u200b\u2028\u2029",
            "' OR 1=1 --",
            "../../etc/passwd",
            "{{ settings.SECRET_KEY }}{% debug %}",
        )
    ],
]


@pytest.fixture
def finance(finance_user, postgres_rules, install_client) -> Client:
    # A dozen customers: a page of rows is rendered for every input, so keep it short.
    install_client(SandboxTransport(SandboxAPI(12)))
    client = client_for(finance_user)
    client.raise_request_exception = True
    return client


def assert_survives(response) -> str:
    assert response.status_code < 500
    content_type = response.get("Content-Type", "")
    if content_type.startswith("text/csv"):
        body_of(response)
        return ""
    body = text_of(response)
    for reflected in REFLECTIONS:
        assert reflected.lower() not in body.lower(), reflected
    return body


@pytest.mark.parametrize("query", HOSTILE_QUERIES, ids=lambda q: q[:60])
def test_hostile_query_strings_never_5xx_nor_reflect_markup(finance, query):
    assert_survives(finance.get(f"{LIST_URL}?{query}"))
    assert_survives(finance.get(f"{LIST_URL}?{query}", HTTP_HX_REQUEST="true"))
    assert_survives(finance.get(f"{EXPORT_URL}?{query}"))


@pytest.mark.parametrize("query", HOSTILE_QUERIES, ids=lambda q: q[:60])
def test_hostile_form_posts_never_5xx_nor_reflect_markup(finance, query):
    for htmx in ({}, {"HTTP_HX_REQUEST": "true"}):
        response = finance.post(
            LIST_URL, query, content_type="application/x-www-form-urlencoded", **htmx
        )
        assert_survives(response)
        if response.status_code == 303:
            assert_survives(finance.get(response["Location"]))


def test_hostile_input_is_shown_escaped_not_dropped(finance):
    body = finance.get(f"{LIST_URL}?ingest_alias=<b>bold</b>").content.decode()
    assert "&lt;b&gt;bold&lt;/b&gt;" in body


def test_hostile_values_from_the_api_are_shown_escaped(support_user, settings, install_client):
    settings.SALESFORCE_BASE_URL = "https://acme.lightning.force.com"
    customer = {
        "id": "1d9c9a44-8d0c-4a5e-8a5b-6f1e2c3d4e5f",
        "name": '<script>alert("name")</script>',
        "external_id": '"><img src=x onerror=alert(1)>',
        "ingest_aliases": ["'><svg/onload=alert(1)>", "javascript:alert(1)"],
        "customer_config": {"salesforce_account_id": '"><script>alert("sf")</script>'},
        "custom_fields": {
            "<script>alert('key')</script>": '<img src=x onerror=alert("value")>',
            "note": "</textarea><script>alert(2)</script>",
        },
        "created_at": "2024-03-01T12:00:00Z",
        "updated_at": "2024-03-01T12:00:00Z",
    }
    install_client(
        httpx.MockTransport(
            lambda r: httpx.Response(200, json={"data": [customer], "next_page": None})
        ),
    )
    response = client_for(support_user).get(LIST_URL)
    body = assert_survives(response)
    assert response.status_code == 200
    # The table is Jinja2's (MarkupSafe writes a quote as &#34;), the rest Django's (&quot;).
    quote = "(&quot;|&#34;)"
    assert re.search(rf"&lt;script&gt;alert\({quote}name{quote}\)&lt;/script&gt;", body)
    assert '<script>alert("name")' not in body
    assert 'href="javascript:' not in body
    assert not markup_problems(response)


# A value is sometimes plain text, sometimes a known attack wrapped in text.
hostile_text = st.one_of(
    st.text(max_size=300),
    st.sampled_from(XSS),
    st.builds(
        lambda a, x, b: a + x + b, st.text(max_size=20), st.sampled_from(XSS), st.text(max_size=20)
    ),
    st.lists(st.uuids().map(str), max_size=150).map(",".join),
)
hostile_params = st.lists(
    st.tuples(st.sampled_from([*FIELDS, "unknown", ""]), hostile_text), max_size=8
)


@hypothesis_settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(params=hostile_params, how=st.sampled_from(["get", "htmx", "post", "export"]))
def test_any_parameters_never_5xx_nor_reflect_markup(finance, params, how):
    query = urlencode(params)
    if how == "get":
        response = finance.get(f"{LIST_URL}?{query}")
    elif how == "htmx":
        response = finance.get(f"{LIST_URL}?{query}", HTTP_HX_REQUEST="true")
    elif how == "post":
        response = finance.post(LIST_URL, query, content_type="application/x-www-form-urlencoded")
    else:
        response = finance.get(f"{EXPORT_URL}?{query}")
    assert_survives(response)


def test_a_page_link_with_a_nul_in_its_trail_is_refused_not_stored(finance):
    first = finance.get(f"{LIST_URL}?limit=2").content.decode()
    cursor = re.search(r'<a rel="next" href="[^"]*next_page=([^"&]+)', first).group(1)
    # Long enough that the next link's trail is stored as a saved search.
    trail = "&".join(["prev=" + "p" * 100] * 70 + ["prev=%00"])
    response = finance.get(f"{LIST_URL}?limit=2&next_page={cursor}&{trail}")
    assert_survives(response)
