"""Run one function over a stream of items on the machine's cores, results in input order.

Items are taken from their iterator one by one and handed to workers in small
chunks; a bounded number of chunks wait in worker processes at any time, so memory stays flat however long the
stream. A run with few items never pays for a pool: the first `SMALL_RUN` items
are looked at before deciding, and a stream that ends sooner is handled in this
process. Workers are spawned (not forked): sources may run fetch threads, and
forking a process that has threads can deadlock the child.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import chain
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")

# Below this many items a run is done in this process. A worker spends about two
# seconds importing the summariser, which is about the time 20 articles take to
# summarise on one core (BENCHMARKS.md, "End to end").
SMALL_RUN = 20
# Items go to a worker in chunks: each hand-over costs the main process a pipe write and
# thread switches (a few ms on a busy machine), so one per item would slow the feeding.
CHUNK = 4
IN_FLIGHT_PER_WORKER = 2  # chunks queued per worker, so none waits while results are stored


def call_each(function: Callable[..., Result], argument_lists: list[tuple[Any, ...]]) -> list[Result | Failed]:
    """In a worker: `function` applied to each argument tuple of a chunk. It stops at the
    first error, so the items before it are still stored, as in this process."""
    results: list[Result | Failed] = []
    for arguments in argument_lists:
        try:
            results.append(function(*arguments))
        except Exception as error:
            results.append(Failed(error))
            break
    return results


class Failed:
    """The error an item's call raised in a worker, sent back in place of its result."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def worker_count(setting: int | str) -> int:
    """Processes to use for a `workers` setting: "auto" is one per CPU core."""
    if setting == "auto":
        return max(1, os.cpu_count() or 1)
    return max(1, int(setting))


class Workers(Generic[Item, Result]):
    """A lazily started process pool shared by every `map` of one run; close it when done."""

    def __init__(self, function: Callable[..., Result], count: int, small_run: int = SMALL_RUN) -> None:
        self.function = function
        self.count = count
        self.small_run = small_run
        self.in_flight = count * IN_FLIGHT_PER_WORKER
        self.items_seen = 0  # over every map of the run: many small sources still add up
        self._pool: ProcessPoolExecutor | None = None

    @property
    def started(self) -> bool:
        """True once worker processes were started."""
        return self._pool is not None

    def map(self, items: Iterable[Item], arguments: Callable[[Item], tuple[Any, ...]]) -> Iterator[tuple[Item, Result]]:
        """Yield (item, function(*arguments(item))) for each item, in input order.

        An error raised by the function is raised here, for its item. An error
        raised by `items` is raised after the items taken before it were done.
        """
        stream = iter(items)
        looked_at: list[Item] = []
        failure: Exception | None = None
        if self._pool is None and self.count > 1:
            try:
                for item in stream:
                    looked_at.append(item)
                    self.items_seen += 1
                    if self.items_seen >= self.small_run:
                        break
            except Exception as error:  # the source failed: finish what it gave first
                failure = error
        if failure is not None or (self._pool is None and (self.count <= 1 or self.items_seen < self.small_run)):
            for item in looked_at if failure is not None else chain(looked_at, stream):
                yield item, self.function(*arguments(item))
            if failure is not None:
                raise failure
            return
        yield from self._parallel(chain(looked_at, stream), arguments)

    def _parallel(self, stream: Iterator[Item], arguments: Callable[[Item], tuple[Any, ...]]) -> Iterator[tuple[Item, Result]]:
        pending: deque[tuple[list[Item], Future[list[Result | Failed]]]] = deque()
        chunk: list[Item] = []
        failure: Exception | None = None
        try:
            while True:
                try:
                    item = next(stream)
                except StopIteration:
                    break
                except Exception as error:  # the source failed: finish what it gave first
                    failure = error
                    break
                chunk.append(item)
                if len(chunk) == CHUNK:
                    pending.append((chunk, self._start().submit(call_each, self.function, [arguments(i) for i in chunk])))
                    chunk = []
                    if len(pending) >= self.in_flight:
                        yield from self._results(pending.popleft())
            if chunk:
                pending.append((chunk, self._start().submit(call_each, self.function, [arguments(i) for i in chunk])))
            while pending:
                yield from self._results(pending.popleft())
        finally:
            for _, future in pending:
                future.cancel()
        if failure is not None:
            raise failure

    def _results(self, entry: tuple[list[Item], Future[list[Result | Failed]]]) -> Iterator[tuple[Item, Result]]:
        items, future = entry
        try:
            results = future.result()
        except BrokenProcessPool:
            self.close()  # a worker died: the next map starts a fresh pool
            raise
        for item, result in zip(items, results):
            if isinstance(result, Failed):
                raise result.error
            yield item, result

    def _start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            log.info("starting up to %d worker processes", self.count)
            self._pool = ProcessPoolExecutor(self.count, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def close(self) -> None:
        """Stop the worker processes, if any were started."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
