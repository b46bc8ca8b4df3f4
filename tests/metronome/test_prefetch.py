"""Working ahead of a consumer (customers/metronome/prefetch.py): bounded, every item once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from customers.metronome.prefetch import prefetched


def counting_source(produced: list[int], total: int) -> Iterator[int]:
    for n in range(total):
        produced.append(n)
        yield n


def settled(produced: list[int]) -> int:
    """How many items the source has produced, once it has stopped producing (blocked on
    the bound, or done): the count no longer changes for a while."""
    count = -1
    while count != len(produced):
        count = len(produced)
        time.sleep(0.05)
    return count


@pytest.mark.parametrize("ahead", [1, 3])
def test_a_source_runs_at_most_ahead_items_past_the_consumer(ahead: int) -> None:
    produced: list[int] = []
    items = prefetched(
        [lambda: counting_source(produced, 100)], ahead=ahead, thread_name="test-prefetch"
    )
    try:
        for consumed in range(1, 6):
            assert next(items) == consumed - 1
            # Waiting in the queue: at most `ahead`; one more in the source's hand.
            assert settled(produced) <= consumed + ahead + 1
    finally:
        items.close()


def test_two_sources_hand_over_every_item_once() -> None:
    def numbers(start: int) -> Iterator[int]:
        yield from range(start, start + 500)

    items = prefetched(
        [lambda: numbers(0), lambda: numbers(1_000)], ahead=2, thread_name="test-prefetch"
    )
    got = list(items)
    assert sorted(got) == [*range(500), *range(1_000, 1_500)]
    # Each source's own order is kept.
    assert [n for n in got if n < 1_000] == list(range(500))


def test_closing_early_stops_the_source() -> None:
    stopped = threading.Event()

    def endless() -> Iterator[int]:
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            stopped.set()

    items = prefetched([endless], ahead=1, thread_name="test-prefetch")
    assert next(items) == 0
    items.close()
    assert stopped.wait(timeout=5)
