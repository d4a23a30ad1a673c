"""Run one function over a stream of items on the machine's cores, results in input order.

Items are taken from their iterator one by one and handed to worker processes
in small chunks, with a bounded number of chunks in flight, so memory stays
flat however long the stream. Items that need no call pass through in order.
A run with little work never pays for a pool: the first `SMALL_RUN` calls are
looked at before deciding, and a stream that ends sooner is handled in this
process. Workers are spawned, not forked: sources poll in threads, and forking
a process that has threads can deadlock the child.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import chain
from typing import Any, Generic, TypeVar

from digest.memory import one_blas_thread

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")
Arguments = tuple[Any, ...] | None  # None: the item needs no call and passes through
Outcome = Any  # the call's result, the Exception it raised, or None for an item passed through

# Below this many calls a run is done in this process: a worker's start-up (about a
# second of imports) outweighs what a second core saves until about 300 summaries
# (BENCHMARKS.md, "Small runs").
SMALL_RUN = 300
# Calls go to a worker in chunks: each hand-over costs the main process a pipe write and
# thread switches (several ms on a busy machine), so one per call slows the feeding.
CHUNK = 4
IN_FLIGHT_PER_WORKER = 2  # chunks queued per worker, so none idles while results are stored
# A long-lived caller's workers (the daemon's) stay this long after the last poll using them ended: a
# poll soon after reuses them instead of paying a worker's start-up (about 0.8 CPU s) again, and an idle
# daemon still holds none once it passed.
LINGER_SECONDS = 10.0
ORPHAN_CHECK_SECONDS = 0.5


def call_each(function: Callable[..., Any], argument_lists: list[tuple[Any, ...]]) -> list[Outcome]:
    """In a worker: `function` applied to each argument tuple; an exception is returned in place."""
    return [_call(function, arguments) for arguments in argument_lists]


def _call(function: Callable[..., Any], arguments: tuple[Any, ...]) -> Outcome:
    try:
        return function(*arguments)
    except Exception as error:
        return error


def _worker_start(parent: int) -> None:
    """In each worker: leave Ctrl-C to the parent (it stops the pool), and exit as soon as
    the parent is gone, so a killed run leaves no workers behind."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    one_blas_thread()  # inherited from the CLI already; here too when a program embeds the pipeline
    threading.Thread(target=_exit_when_orphaned, args=(parent,), name="orphan-watch", daemon=True).start()


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK_SECONDS)
    os._exit(1)


def worker_count(setting: int | str) -> int:
    """Worker processes for a `workers` setting (0: none, all in this process).

    "auto" is one per CPU core but one: this process polls, detects languages,
    stores and renders, which keeps about one core busy. On two cores one worker
    beside it was faster than two and 80 MB smaller (BENCHMARKS.md).
    """
    if setting == "auto":
        return max(0, (os.cpu_count() or 1) - 1)
    return max(0, int(setting))


class Workers(Generic[Item, Result]):
    """A lazily started process pool shared by every `map` of one run, or by the daemon's concurrent
    polls: each user holds a `session`, and the processes stop when the last session ends."""

    def __init__(self, function: Callable[..., Result], count: int, small_run: int = SMALL_RUN, linger: float = 0.0) -> None:
        self.function = function
        self.count = count  # worker processes; 0 calls everything in this process
        self.small_run = small_run
        self.linger = linger  # seconds the processes outlive the last session (see session)
        self.in_flight = count * IN_FLIGHT_PER_WORKER
        self.calls_seen = 0  # over every map of the run: many small sources still add up
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()  # maps from several threads share the pool
        self._sessions = 0
        self._idle: threading.Timer | None = None  # stops the processes once `linger` passed with no session

    @contextmanager
    def session(self) -> Iterator[None]:
        """Use the pool for a while (one poll); `linger` seconds after the last session ended with none
        begun since, its processes stop, so an idle daemon holds no worker and none of the summariser's memory."""
        with self._lock:
            self._sessions += 1
            self._cancel_idle()
        try:
            yield
        finally:
            with self._lock:
                self._sessions -= 1
                if self._sessions == 0:
                    if self.linger > 0 and self._pool is not None:
                        self._idle = threading.Timer(self.linger, self._stop_if_idle)
                        self._idle.daemon = True
                        self._idle.start()
                    else:
                        self._shut_down()

    def _stop_if_idle(self) -> None:
        with self._lock:
            if self._sessions == 0 and threading.current_thread() is self._idle:
                self._idle = None
                self._shut_down()

    def _cancel_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    @property
    def started(self) -> bool:
        """True once the pool was made (its processes start with the first chunk)."""
        return self._pool is not None

    def map(
        self, items: Iterable[Item], arguments: Callable[[Item], Arguments], before_wait: Callable[[], None] | None = None
    ) -> Iterator[tuple[Item, Outcome]]:
        """Yield (item, outcome of function(*arguments(item))) for each item, in input order.

        A call's exception is yielded as its outcome; an item whose arguments are
        None is yielded with None. An error raised by `items` is raised after the
        items taken before it were yielded. `before_wait` is called before waiting
        on a worker whose result is not ready (the pipeline commits its writes).
        """
        stream = self._with_arguments(items, arguments)
        looked_at: list[tuple[Item, Arguments]] = []
        failure: Exception | None = None
        if self._pool is None and self.count > 0:
            try:
                for entry in stream:
                    looked_at.append(entry)
                    self.calls_seen += entry[1] is not None
                    if self.calls_seen >= self.small_run:
                        break
            except Exception as error:  # the source failed: finish what it gave first
                failure = error
        in_process = self._pool is None and (self.count == 0 or self.calls_seen < self.small_run)
        if failure is None and not in_process:
            yield from self._parallel(looked_at, stream, before_wait)
            return
        for item, item_arguments in looked_at if failure else chain(looked_at, stream):
            yield item, None if item_arguments is None else _call(self.function, item_arguments)
        if failure is not None:
            raise failure

    @staticmethod
    def _with_arguments(items: Iterable[Item], arguments: Callable[[Item], Arguments]) -> Iterator[tuple[Item, Arguments]]:
        for item in items:
            yield item, arguments(item)

    def _parallel(
        self,
        looked_at: list[tuple[Item, Arguments]],
        stream: Iterator[tuple[Item, Arguments]],
        before_wait: Callable[[], None] | None,
    ) -> Iterator[tuple[Item, Outcome]]:
        pending: deque[tuple[list[tuple[Item, Arguments]], Future[list[Outcome]] | None]] = deque()
        chunk: list[tuple[Item, Arguments]] = []
        failure: Exception | None = None
        entries = iter(looked_at)
        try:
            while True:
                try:
                    entry = next(entries, None) or next(stream)
                except StopIteration:
                    break
                except Exception as error:  # the source failed: finish what it gave first
                    failure = error
                    break
                chunk.append(entry)
                if sum(arguments is not None for _, arguments in chunk) == CHUNK:
                    pending.append(self._submit(chunk))
                    chunk = []
                    if len(pending) >= self.in_flight:
                        yield from self._outcomes(pending.popleft(), before_wait)
            if chunk:
                pending.append(self._submit(chunk))
            while pending:
                yield from self._outcomes(pending.popleft(), before_wait)
        finally:
            for _, future in pending:
                if future:
                    future.cancel()
        if failure is not None:
            raise failure

    def _submit(self, chunk: list[tuple[Item, Arguments]]) -> tuple[list[tuple[Item, Arguments]], Future[list[Outcome]] | None]:
        calls = [arguments for _, arguments in chunk if arguments is not None]
        return chunk, self._start().submit(call_each, self.function, calls) if calls else None

    def _outcomes(
        self, entry: tuple[list[tuple[Item, Arguments]], Future[list[Outcome]] | None], before_wait: Callable[[], None] | None
    ) -> Iterator[tuple[Item, Outcome]]:
        chunk, future = entry
        if future is not None and not future.done() and before_wait is not None:
            before_wait()
        try:
            outcomes = iter(future.result() if future else ())
        except BrokenProcessPool:
            self.close()  # a worker died: the next map starts a fresh pool
            raise
        for item, arguments in chunk:
            yield item, None if arguments is None else next(outcomes)

    def _start(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                log.info("starting up to %d worker processes", self.count)
                self._pool = ProcessPoolExecutor(
                    self.count,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_worker_start,
                    initargs=(os.getpid(),),
                )
            return self._pool

    def close(self) -> None:
        """Stop the worker processes, if any were started."""
        with self._lock:
            self._cancel_idle()
            self._shut_down()

    def _shut_down(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
