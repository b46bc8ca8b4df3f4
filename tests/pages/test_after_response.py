"""customers/after_response.py: work the customers page does once it is sent."""

from __future__ import annotations

import logging

import pytest

from customers import after_response


def test_work_runs_at_once_when_nothing_collects_it():
    done: list[str] = []
    after_response.defer(lambda: done.append("now"))
    assert done == ["now"]


def test_collected_work_waits_and_runs_in_order_each_failure_logged(caplog):
    done: list[str] = []
    pending: list[after_response.Work] = []

    def broken() -> None:
        raise RuntimeError("a failing cache")

    with after_response.collecting(pending):
        after_response.defer(lambda: done.append("first"))
        after_response.defer(broken)
        after_response.defer(lambda: done.append("last"))
    assert done == [] and len(pending) == 3
    after_response.defer(lambda: done.append("outside"))  # the block is over: at once
    assert done == ["outside"]

    with caplog.at_level(logging.ERROR, logger="customers.after_response"):
        after_response.run(pending)
    assert done == ["outside", "first", "last"] and pending == []
    assert any("a failing cache" in (record.exc_text or "") for record in caplog.records)


def test_a_response_runs_its_work_when_closed_before_the_request_ends(db):
    from django.core.signals import request_finished
    from django.db import close_old_connections
    from django.http import HttpResponse

    order: list[str] = []
    response = HttpResponse(b"the page")
    after_response.when_sent(response, [lambda: order.append("work")])

    def finished(**kwargs: object) -> None:
        order.append("request finished")

    request_finished.disconnect(close_old_connections)  # the test's connection stays open
    request_finished.connect(finished)
    try:
        assert order == []
        response.close()
    finally:
        request_finished.disconnect(finished)
        request_finished.connect(close_old_connections)
    assert order == ["work", "request finished"]


def test_an_htmx_search_still_gives_its_slot_back_and_caches_its_search(
    support_client, sandbox_api
):
    from customers.models import WorkSlot

    url = "/customers/?customer_ids=" + ",".join(c["id"] for c in sandbox_api.customers[:3])
    support_client.get(url, HTTP_HX_REQUEST="true")  # the test client closes the response
    assert WorkSlot.objects.count() == 0
    calls = sandbox_api.request_count
    fragment = support_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-customer-id="' in fragment
    assert sandbox_api.request_count == calls, "answered from the search's cache"


def test_an_htmx_search_that_fails_gives_its_slot_back_at_once(
    support_client, sandbox_api, monkeypatch
):
    # No response will be closed: the deferred release must not be lost with it.
    from customers import display
    from customers.models import WorkSlot

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug while the rows are built")

    monkeypatch.setattr(display, "customer_rows", broken)
    url = "/customers/?customer_ids=" + ",".join(c["id"] for c in sandbox_api.customers[:3])
    with pytest.raises(RuntimeError, match="a bug"):
        support_client.get(url, HTTP_HX_REQUEST="true")
    assert WorkSlot.objects.count() == 0


def test_work_that_fails_after_the_page_is_logged_with_the_requests_id(
    support_client, sandbox_api, monkeypatch, caplog
):
    from customers import concurrency
    from customers.models import WorkSlot

    def broken(user_id: object, slot: int) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(concurrency, "release", broken)
    url = "/customers/?customer_ids=" + ",".join(c["id"] for c in sandbox_api.customers[:3])
    with caplog.at_level(logging.INFO):
        page = support_client.get(url).content.decode()
    assert 'data-customer-id="' in page  # the person has their page
    failed = [r for r in caplog.records if r.name == "customers.after_response"]
    line = [r for r in caplog.records if r.name == "dashboard.request"]
    assert len(failed) == 1 and "the database went away" in (failed[0].exc_text or "")
    assert len(line) == 1 and failed[0].request_id == line[0].request_id != "-"
    assert WorkSlot.objects.count() == 1  # it expires on its own (EXPENSIVE_WORK_SLOT_SECONDS)
