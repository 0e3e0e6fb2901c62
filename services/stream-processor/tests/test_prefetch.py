"""Prefetched: a generator run one step ahead of its consumer, in a thread."""

from __future__ import annotations

import threading
from collections.abc import Generator

import pytest

from signal_processor.adapters.prefetch import Prefetched


def test_items_come_in_order_and_the_return_value_after_them() -> None:
    def source() -> Generator[int, None, str]:
        yield from range(100)
        return "done"

    read = Prefetched(source(), depth=3)
    assert list(read) == list(range(100))
    assert read.value == "done"


def test_the_next_item_is_fetched_while_the_consumer_holds_this_one() -> None:
    fetched = [threading.Event() for _ in range(3)]

    def source() -> Generator[int, None, None]:
        for i in range(3):
            fetched[i].set()  # a GetRecords call done
            yield i

    for item in Prefetched(source()):
        if item + 1 < len(fetched):
            # done in turn, the next fetch would wait for this loop: it never comes
            assert fetched[item + 1].wait(5), "the next item was not fetched ahead"


def test_an_error_is_raised_to_the_consumer_in_its_place() -> None:
    def source() -> Generator[int, None, None]:
        yield 1
        yield 2
        raise ConnectionError("reset by peer")

    got: list[int] = []
    read = Prefetched(source())

    def consume() -> None:
        got.extend(read)

    with pytest.raises(ConnectionError, match="reset by peer"):
        consume()
    assert got == [1, 2]
    with pytest.raises(RuntimeError, match="not exhausted"):
        read.value  # noqa: B018


def test_a_consumer_that_stops_early_stops_the_thread() -> None:
    closed = threading.Event()

    def source() -> Generator[int, None, None]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    read = Prefetched(source(), depth=2)
    for item in read:
        if item == 5:
            break
    assert closed.wait(5)
