"""Working ahead of a consumer: each source iterated in a background thread of its own,
its items handed over through a small queue. Used by the index sync: the active and the
archived listing fetched side by side, so each waits on Metronome while the other's
customers are written.

Submitting each fetch from the consumer's thread instead does not overlap: the consumer
holds the GIL while it writes rows, so the request only leaves once the writing is done
(measured in bench/README.md)."""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")


@dataclass(frozen=True, slots=True)
class _Handed(Generic[Item]):
    item: Item


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


def prefetched(
    sources: Sequence[Callable[[], Iterable[Item]]], *, ahead: int, thread_name: str
) -> Generator[Item, None, None]:
    """The items of every source, in the order they arrive, with at most `ahead` of them
    waiting. A source's error is raised in the consumer's thread. A consumer that stops
    early stops every source at its next item (and closes a source that is a generator),
    so no thread waits for a reader that has gone."""
    handed: queue.Queue[_Handed[Item] | _Failed | None] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def hand_over(item: _Handed[Item] | _Failed | None) -> None:
        while not stop.is_set():
            try:
                handed.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def run(source: Callable[[], Iterable[Item]]) -> None:
        items: Iterator[Item] | None = None
        try:
            items = iter(source())
            for item in items:
                if stop.is_set():
                    return
                hand_over(_Handed(item))
            hand_over(None)
        except BaseException as error:  # the consumer raises it, in its own thread
            hand_over(_Failed(error))
        finally:
            close = getattr(items, "close", None)  # a generator's: stops its own work
            if close is not None:
                close()

    for source in sources:
        # In a copy of the caller's context, so its log lines carry the request's ID.
        threading.Thread(
            target=contextvars.copy_context().run,
            args=(run, source),
            name=thread_name,
            daemon=True,
        ).start()
    running = len(sources)
    try:
        while running:
            handed_item = handed.get()
            if handed_item is None:
                running -= 1
            elif isinstance(handed_item, _Failed):
                raise handed_item.error
            else:
                yield handed_item.item
    finally:
        # A consumer that stops early must not wait for an item it will never read.
        stop.set()
