"""How politely to treat one host: an adaptive pace (AIMD) and its robots.txt rules.

Pure bookkeeping with the time passed in, so the rules are testable without a
clock; `digest.fetch` does the waiting and the requests. The rules (README,
"Manners"):

- a host may have `window` requests in flight; it starts at the most allowed
  (`[fetch] per_host_concurrency`) and the starts of two requests are at least
  `gap` seconds apart, starting at the floor (`per_host_delay`, or the host's
  robots.txt Crawl-delay / Request-rate when larger);
- an answer that came quickly and was not a refusal adds 1/window to the window
  (about one more request in flight per window of good answers) and halves the
  gap's excess over the floor;
- an overload (429, 502, 503, 504) halves the window and doubles the gap (at
  least 1 s, at most 60 s); a Retry-After holds every request to the host back
  until then;
- a slow answer (headers after SLOW_ANSWER seconds), a timeout or a broken
  connection halves the window;
- a cut counts once per round trip: answers to requests started before the last
  cut do not cut again (as TCP does), so one burst of bad answers halves once.

`digest worker` processes share these rules per host through the store
(StoredManners): each request's start and end is one short transaction on its
host's row, so the window, the gap and a Retry-After hold are the deployment's,
not one process's. Times there are wall-clock seconds, the clock workers on
several machines share.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import threading
import urllib.robotparser
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

SLOW_ANSWER = 1.0  # seconds to a response's headers past which a host counts as struggling
MIN_GAP_AFTER_OVERLOAD = 1.0  # seconds between starts after a 429/503, at least
MAX_GAP = 60.0  # the gap never grows past this on its own (Crawl-delay may ask for more)
MAX_CRAWL_DELAY = 300.0  # a robots.txt cannot space requests by more than five minutes
ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309: parse at least the first 500 KiB
ROBOTS_FRESH = 24 * 3600.0  # RFC 9309: a robots.txt is not cached for more than a day
ROBOTS_RETRY = 600.0  # an unreadable robots.txt is asked for again after ten minutes
_SNAP = 0.01  # a gap this close to the floor is the floor
FLIGHT_SLACK = 5.0  # seconds past its deadline after which a shared request in flight stops counting (its worker died)
FULL_WINDOW_RECHECK = 0.1  # seconds a request waits before asking a full shared window again
T = TypeVar("T")


class Answer(enum.Enum):
    """What one request taught about its host."""

    GOOD = "good"  # any complete answer in time that is not an overload (404 too)
    SLOW = "slow"  # headers after SLOW_ANSWER, a timeout, a refused or broken connection
    OVERLOADED = "overloaded"  # 429, 502, 503, 504


OVERLOAD_STATUSES = frozenset({429, 502, 503, 504})


@dataclass
class Pace:
    """The manners of one host: how many requests in flight, how far apart, and any hold."""

    most: int  # per_host_concurrency: the window never grows past this
    floor: float  # seconds: per_host_delay, or robots.txt's Crawl-delay when larger
    window: float = 0.0
    gap: float = 0.0
    next_start: float = -math.inf  # no request starts before this time
    not_before: float = -math.inf  # the host asked (Retry-After) not to be asked before this time
    last_cut: float = -math.inf  # start time of the request whose answer last cut the pace
    in_flight: int = 0

    def __post_init__(self) -> None:
        self.window = self.window or float(self.most)
        self.gap = max(self.gap, self.floor)

    def allowed(self) -> int:
        """Requests that may be in flight now."""
        return max(1, int(self.window))

    def ready_at(self, now: float) -> float | None:
        """When the next request may start: `now` or later; None while the window is full."""
        if self.in_flight >= self.allowed():
            return None
        return max(now, self.next_start, self.not_before)

    def start(self, now: float) -> None:
        """A request starts now."""
        self.in_flight += 1
        self.next_start = now + self.gap

    def finish(self, started: float, answer: Answer, now: float, retry_after: float | None = None) -> None:
        """A request started at `started` ended with `answer` at `now`."""
        self.in_flight -= 1
        if retry_after is not None:
            self.not_before = max(self.not_before, now + retry_after)
        if answer is Answer.GOOD:
            self.window = min(float(self.most), self.window + 1.0 / self.window)
            self.gap = self.floor + (self.gap - self.floor) / 2
            if self.gap - self.floor < _SNAP:
                self.gap = self.floor
            return
        if started < self.last_cut:
            return  # this request was already in flight at the last cut: the same round trip
        self.last_cut = now
        self.window = max(1.0, self.window / 2)
        if answer is Answer.OVERLOADED:
            self.gap = max(self.floor, min(MAX_GAP, max(MIN_GAP_AFTER_OVERLOAD, self.gap * 2)))

    def ask_at_most_every(self, seconds: float, one_at_a_time: bool) -> None:
        """The host's robots.txt asks for this spacing (Crawl-delay or Request-rate)."""
        self.floor = max(self.floor, min(seconds, MAX_CRAWL_DELAY))
        self.gap = max(self.gap, self.floor)
        if one_at_a_time:
            self.most = 1
            self.window = 1.0


@dataclass
class SharedPace:
    """One host's pace as every worker on one store sees it, and its requests in flight: each counts until
    it ends or its deadline passes (so a worker that died mid-request holds the window for seconds only)."""

    pace: Pace
    flights: dict[str, float]  # request id -> wall-clock time it stops counting

    @classmethod
    def load(cls, stored: str | None, most: int, floor: float) -> SharedPace:
        """The stored state, or a new host's: `most` in flight, `floor` seconds between starts."""
        if not stored:
            return cls(Pace(most=most, floor=floor), {})
        data = json.loads(stored)
        return cls(Pace(**data["pace"]), data["flights"])

    def dump(self) -> str:
        """The state as the store keeps it."""
        return json.dumps({"pace": dataclasses.asdict(self.pace), "flights": self.flights})

    def begin(self, flight: str, now: float, until: float) -> tuple[float, float]:
        """Start request `flight` now if the pace allows (it counts in flight until `until`). Returns the
        seconds to wait before asking again (0.0: started) and how long a Retry-After still holds the host."""
        self.flights = {name: end for name, end in self.flights.items() if end > now}
        self.pace.in_flight = len(self.flights)
        held = self.pace.not_before - now
        ready = self.pace.ready_at(now)
        if ready is None:
            return max(FULL_WINDOW_RECHECK, held), held
        if ready > now:
            return ready - now, held
        self.pace.start(now)
        self.flights[flight] = until
        return 0.0, held

    def finish(self, flight: str, started: float, answer: Answer, now: float, retry_after: float | None) -> None:
        """Request `flight`, started at `started`, ended with `answer` at `now` (Pace.finish)."""
        self.flights.pop(flight, None)
        self.pace.in_flight = len(self.flights) + 1
        self.pace.finish(started, answer, now, retry_after)


class HostStates(Protocol):
    """A store connection as StoredManners uses it (digest.store.base.Store.change_host)."""

    def change_host(self, origin: str, change: Callable[[str | None], tuple[str, T]]) -> T: ...

    def close(self) -> None: ...


class StoredManners:
    """Per-host manners kept in the store, for every process fetching from the same hosts (`digest worker`):
    `change` runs on a host's SharedPace in one short transaction, on a connection from `opener`, kept for
    the next change when this one ends (one thread at a time uses it: a store is not shared between threads)."""

    def __init__(self, opener: Callable[[], HostStates], most: int, floor: float) -> None:
        self._opener = opener
        self._most = most
        self._floor = floor
        self._idle: list[HostStates] = []
        self._idle_lock = threading.Lock()

    def change(self, origin: str, change: Callable[[SharedPace], T]) -> T:
        """Apply `change` to `origin`'s shared pace and keep it; what `change` returns."""

        def apply(stored: str | None) -> tuple[str, T]:
            shared = SharedPace.load(stored, self._most, self._floor)
            result = change(shared)
            return shared.dump(), result

        with self._idle_lock:
            states = self._idle.pop() if self._idle else None
        if states is None:
            states = self._opener()
        try:
            result = states.change_host(origin, apply)
        except BaseException:
            states.close()  # a connection that failed is not used again
            raise
        with self._idle_lock:
            self._idle.append(states)
        return result


def judge(status: int | None, header_seconds: float) -> Answer:
    """The lesson of one answer: its status (None: no answer at all) and how long its headers took."""
    if status is None:
        return Answer.SLOW
    if status in OVERLOAD_STATUSES:
        return Answer.OVERLOADED
    return Answer.SLOW if header_seconds >= SLOW_ANSWER else Answer.GOOD


@dataclass
class RobotRules:
    """One host's robots.txt, as RFC 9309 reads it: which paths we may fetch, and how often."""

    parser: urllib.robotparser.RobotFileParser | None = None
    unreachable: str = ""  # why it could not be read (5xx, no answer): RFC 9309 says assume all disallowed
    fetched_at: float = 0.0
    user_agent: str = "digest"

    @classmethod
    def parse(cls, body: bytes, user_agent: str, fetched_at: float) -> RobotRules:
        """Rules from a robots.txt body (bytes past ROBOTS_MAX_BYTES are ignored)."""
        parser = urllib.robotparser.RobotFileParser()
        parser.parse(body[:ROBOTS_MAX_BYTES].decode("utf-8", "replace").splitlines())
        return cls(parser=parser, fetched_at=fetched_at, user_agent=user_agent)

    @classmethod
    def allow_all(cls, fetched_at: float) -> RobotRules:
        """No robots.txt (a 4xx): everything is allowed."""
        return cls(fetched_at=fetched_at)

    @classmethod
    def unavailable(cls, why: str, fetched_at: float) -> RobotRules:
        """robots.txt could not be read (5xx, no answer): pages are not fetched, RFC 9309 section 2.3.1.4."""
        return cls(unreachable=why, fetched_at=fetched_at)

    def allows(self, url: str) -> bool:
        """May `url` be fetched as a page?"""
        if self.unreachable:
            return False
        if self.parser is None:
            return True
        return self.parser.can_fetch(self.user_agent, url)

    def spacing(self) -> float | None:
        """Seconds the host asks between requests (Crawl-delay, else Request-rate), or None."""
        if self.parser is None:
            return None
        delay = _number(self.parser.crawl_delay(self.user_agent))
        if delay is not None:
            return delay
        rate = self.parser.request_rate(self.user_agent)
        if rate is not None and rate.requests > 0:
            return rate.seconds / rate.requests
        return None

    def stale(self, now: float) -> bool:
        """True once the rules are older than a day (ten minutes when the file could not be read)."""
        return now - self.fetched_at > (ROBOTS_RETRY if self.unreachable else ROBOTS_FRESH)


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if number >= 0 and math.isfinite(number) else None
