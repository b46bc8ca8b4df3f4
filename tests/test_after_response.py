"""customers/after_response.py: work a page does once it is sent."""

from __future__ import annotations

import logging

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
