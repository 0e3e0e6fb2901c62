"""Run a generator one step ahead of its consumer, in a thread (the shard read's pages).

A shard's read waits on Kinesis for every GetRecords page, then validates the page in Python.
Done in turn, the task's Python worker idles for the whole call; with the next page fetched in a
thread while the current one is validated, the wait overlaps the work (the thread spends it in a
socket read, without the GIL).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_DONE = object()


class Prefetched(Generic[T, R]):
    """Iterate `source` in a thread, at most `depth` items ahead of the consumer.

    Items come out in order; an exception raised by `source` is raised to the consumer at its
    place in the sequence; `value` is what `source` returned, once it is exhausted. A consumer
    that stops early closes the iterator (or is collected): the thread stops at its next item.
    """

    def __init__(self, source: Generator[T, None, R], *, depth: int = 1) -> None:
        self._source = source
        self._items: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._value: R | None = None
        self._finished = False
        self._thread = threading.Thread(target=self._run, name="prefetch", daemon=True)
        self._thread.start()

    @property
    def value(self) -> R:
        """What the source returned (after the last item)."""
        if not self._finished:
            raise RuntimeError("the source is not exhausted yet")
        return self._value  # type: ignore[return-value]

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            while True:
                try:
                    item = next(self._source)
                except StopIteration as end:
                    self._put((_DONE, end.value))
                    return
                if not self._put(item):
                    self._source.close()
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            self._put((_DONE, exc))

    def __iter__(self) -> Iterator[T]:
        try:
            while True:
                item = self._items.get()
                if isinstance(item, tuple) and len(item) == 2 and item[0] is _DONE:
                    if isinstance(item[1], BaseException):
                        raise item[1]
                    self._value, self._finished = item[1], True
                    return
                yield item  # type: ignore[misc]
        finally:
            self.close()

    def close(self) -> None:
        """Stop the thread (it ends at its next item) and wait for it."""
        self._stop.set()
        self._thread.join()
