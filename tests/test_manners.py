"""Adaptive per-host manners: the pace's rules on given times, and the fetcher keeping them
towards real loopback servers (429 with Retry-After, slow hosts, robots.txt)."""

from __future__ import annotations

import functools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from digest.config import Duration, FetchConfig
from digest.errors import FetchError
from digest.fetch import Fetcher
from digest.manners import Answer, Pace, RobotRules, SharedPace, StoredManners, judge
from tests.httpserver import LocalServer, RequestHandler


def make_fetcher(**overrides: object) -> Fetcher:
    settings: dict[str, object] = {"timeout": Duration(seconds=5), "allow_private": True}
    settings.update(overrides)
    return Fetcher(FetchConfig(**settings))  # type: ignore[arg-type]


class Gauge:
    """Counts requests in flight at a server and notes each arrival: (time, in flight after it came)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.arrivals: list[tuple[float, int]] = []

    def handler(self, seconds: float, body: bytes = b"<rss/>") -> object:
        def handle(request: RequestHandler) -> None:
            with self.lock:
                self.now += 1
                self.arrivals.append((time.monotonic(), self.now))
            request.stopping.wait(seconds)
            with self.lock:
                self.now -= 1
            request.respond(200, body)

        return handle

    def peak(self, after: float = 0.0) -> int:
        with self.lock:
            return max((count for when, count in self.arrivals if when >= after), default=0)


# The rules, on given times (no clock, no server).


def test_pace_starts_generous_and_halves_once_per_round_trip_on_slow_answers() -> None:
    pace = Pace(most=4, floor=0.0)
    assert pace.allowed() == 4 and pace.ready_at(0.0) == 0.0
    for _ in range(4):
        pace.start(0.0)
    assert pace.ready_at(0.0) is None  # the window is full
    for _ in range(4):  # one burst of slow answers to requests sent together
        pace.finish(0.0, Answer.SLOW, 1.0)
    assert pace.allowed() == 2
    pace.start(1.0)
    pace.finish(1.0, Answer.SLOW, 2.0)  # sent after the cut: cuts again
    assert pace.allowed() == 1
    pace.start(2.0)
    pace.finish(2.0, Answer.SLOW, 3.0)
    assert pace.allowed() == 1  # never below one


def test_pace_recovers_additively_after_good_answers() -> None:
    pace = Pace(most=4, floor=0.0, window=1.0)
    answers = 0
    while pace.allowed() < 4:
        pace.start(float(answers))
        pace.finish(float(answers), Answer.GOOD, answers + 0.1)
        answers += 1
    assert (
        answers == 7
    )  # about one more in flight per window of good answers (1, then 2, then 3 answers, and the fractions' rounding)
    pace.finish(0.0, Answer.GOOD, 10.0)
    assert pace.allowed() == 4  # capped at per_host_concurrency


def test_overload_spaces_requests_and_retry_after_holds_the_host() -> None:
    pace = Pace(most=4, floor=0.0)
    pace.start(0.0)
    pace.finish(0.0, Answer.OVERLOADED, 0.5, retry_after=2.0)
    assert pace.allowed() == 2 and pace.gap == 1.0
    assert pace.ready_at(0.5) == 2.5  # nothing before the Retry-After is over
    pace.start(2.5)
    assert pace.ready_at(2.6) == 3.5  # then one start a gap
    pace.finish(2.5, Answer.OVERLOADED, 3.0)
    assert pace.gap == 2.0 and pace.allowed() == 1
    for moment in (4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0):
        pace.start(moment)
        pace.finish(moment, Answer.GOOD, moment + 0.1)
    assert pace.gap == 0.0 and pace.allowed() >= 3  # recovered


def test_crawl_delay_is_a_floor_and_one_at_a_time() -> None:
    pace = Pace(most=4, floor=0.0)
    rules = RobotRules.parse(b"User-agent: *\nCrawl-delay: 3\nDisallow: /private\n", "digest/1.0", 0.0)
    delay = rules.spacing()
    assert delay == 3.0
    pace.ask_at_most_every(delay, one_at_a_time=True)
    for moment in range(5):
        pace.start(moment * 3.0)
        pace.finish(moment * 3.0, Answer.GOOD, moment * 3.0 + 0.1)
    assert pace.gap == 3.0 and pace.allowed() == 1
    assert not rules.allows("http://example.org/private/a") and rules.allows("http://example.org/public")


def test_answers_are_judged_by_status_and_speed() -> None:
    assert judge(200, 0.2) is Answer.GOOD and judge(404, 0.1) is Answer.GOOD
    assert judge(200, 1.0) is Answer.SLOW and judge(None, 0.0) is Answer.SLOW
    assert all(judge(code, 0.1) is Answer.OVERLOADED for code in (429, 502, 503, 504))


# The fetcher keeping them, against real servers on loopback.


def test_429_with_retry_after_holds_that_host_for_its_seconds_and_no_other() -> None:
    answered_429 = threading.Event()
    busy_times: list[float] = []

    def busy(request: RequestHandler) -> None:
        busy_times.append(time.monotonic())
        if len(busy_times) == 1:
            request.respond(429, b"slow down", headers={"Retry-After": "2"})
            answered_429.set()
        else:
            request.respond(200, b"<rss/>")

    with LocalServer("127.0.0.1") as held, LocalServer("127.0.0.3") as other, make_fetcher() as fetcher:
        held.route("/busy", busy)
        held.route("/feed", busy)
        other_gauge = Gauge()
        other.route("/feed", other_gauge.handler(0.05))  # type: ignore[arg-type]
        with ThreadPoolExecutor(4) as pool:
            first = pool.submit(fetcher.fetch, held.url("/busy"))
            assert answered_429.wait(5)
            time.sleep(0.1)  # the fetcher has read the 429 by now
            second = pool.submit(fetcher.fetch, held.url("/feed"))
            started = time.monotonic()
            for _ in range(10):
                fetcher.fetch(other.url("/feed"))
            other_took = time.monotonic() - started
            assert first.result().status == 200 and second.result().status == 200
    assert len(busy_times) == 3  # the 429, the same request asked once more, and the other feed of that host
    assert min(busy_times[1:]) - busy_times[0] >= 2.0  # nothing reached that host for the 2 s it asked
    assert other_took < 1.9  # ten requests to another host (0.05 s each) went on within the 2 s hold
    assert len(other_gauge.arrivals) == 10


def test_a_slow_host_gets_fewer_requests_in_flight_than_a_fast_one() -> None:
    slow, fast = Gauge(), Gauge()
    with LocalServer("127.0.0.4") as slow_server, LocalServer("127.0.0.5") as fast_server, make_fetcher() as fetcher:
        slow_url = slow_server.route("/feed", slow.handler(1.0))  # type: ignore[arg-type]
        fast_url = fast_server.route("/feed", fast.handler(0.1))  # type: ignore[arg-type]
        with ThreadPoolExecutor(24) as pool:
            started = time.monotonic()
            futures = [pool.submit(fetcher.fetch, slow_url) for _ in range(7)]
            futures += [pool.submit(fetcher.fetch, fast_url) for _ in range(16)]
            assert all(future.result().status == 200 for future in futures)
    in_flight = [count for _, count in sorted(slow.arrivals)]  # at each request's arrival, in order
    assert fast.peak() == 4  # per_host_concurrency: a fast host keeps its window
    assert max(in_flight[:4]) == 4  # ... and so does a slow one at first,
    assert max(in_flight[4:6]) <= 2  # but after its first slow answers it gets half,
    assert in_flight[6] == 1  # then one at a time
    assert time.monotonic() - started >= 3.0  # three rounds of 1 s: 4, then 2, then 1


def test_robots_txt_disallow_is_respected_for_pages_but_not_feeds(http_server: LocalServer) -> None:
    http_server.serve("/robots.txt", "User-agent: *\nDisallow: /private/\n", "text/plain")
    private = http_server.serve("/private/story.html", "<html><body><p>secret</p></body></html>")
    public = http_server.serve("/news/story.html", "<html><body><p>news</p></body></html>")
    feed = http_server.serve("/private/feed.xml", "<rss/>", "application/rss+xml")
    with make_fetcher() as fetcher:
        with pytest.raises(FetchError) as refused:
            fetcher.fetch(private, robots=True)
        assert fetcher.fetch(public, robots=True).body.startswith(b"<html>")
        assert fetcher.fetch(feed).body == b"<rss/>"  # feeds are made to be read by programs
    assert str(refused.value) == f"{private}: disallowed by {http_server.url('/robots.txt')}"
    assert http_server.requests_to("/private/story.html") == []
    assert len(http_server.requests_to("/robots.txt")) == 1  # read once for the host


def test_unreadable_robots_txt_keeps_pages_out_but_a_missing_one_allows_them() -> None:
    with LocalServer("127.0.0.6") as broken, LocalServer("127.0.0.7") as missing, make_fetcher() as fetcher:
        broken.route("/robots.txt", lambda request: request.respond(500, b"oops"))
        page = broken.serve("/a.html", "<p>a</p>")
        with pytest.raises(FetchError, match="robots.txt: HTTP 500"):
            fetcher.fetch(page, robots=True)
        assert broken.requests_to("/a.html") == []
        assert fetcher.fetch(missing.serve("/b.html", "<p>b</p>"), robots=True).status == 200  # robots.txt 404: all allowed


def test_crawl_delay_spaces_requests_to_that_host(http_server: LocalServer) -> None:
    http_server.serve("/robots.txt", "User-agent: digest\nCrawl-delay: 1\n", "text/plain")
    gauge = Gauge()
    url = http_server.route("/feed", gauge.handler(0.0))  # type: ignore[arg-type]
    with make_fetcher(user_agent="digest/1.0 (+https://example.org)") as fetcher, ThreadPoolExecutor(4) as pool:
        assert all(response.status == 200 for response in pool.map(lambda _: fetcher.fetch(url), range(4)))
    times = sorted(when for when, _ in gauge.arrivals)
    assert gauge.peak(after=times[1]) == 1  # from the second request on (once robots.txt is read): one at a time
    assert all(later - earlier >= 0.95 for earlier, later in zip(times[1:], times[2:]))


def test_workers_sharing_a_hosts_stored_pace_hold_its_window_and_a_retry_after_together() -> None:
    stored: str | None = None

    def turn(change: object) -> tuple[float, float]:  # one worker loads the stored pace, changes it, stores it
        nonlocal stored
        shared = SharedPace.load(stored, most=2, floor=0.0)
        result = change(shared)  # type: ignore[operator]
        stored = shared.dump()
        return result if result is not None else (0.0, 0.0)  # type: ignore[return-value]

    assert turn(lambda s: s.begin("a", 100.0, 125.0))[0] == 0.0  # worker 1 starts a request
    assert turn(lambda s: s.begin("b", 100.0, 125.0))[0] == 0.0  # worker 2 too
    assert turn(lambda s: s.begin("c", 100.5, 125.5))[0] > 0  # worker 3 waits: the host's two are in flight
    turn(lambda s: s.finish("a", 100.0, Answer.OVERLOADED, 101.0, 30.0))  # worker 1 is told 429, Retry-After: 30
    wait, held = turn(lambda s: s.begin("c", 102.0, 127.0))
    assert wait == pytest.approx(29.0) and held == pytest.approx(29.0)  # worker 3 is held back too
    # worker 2 died with "b" in flight: it stops counting at its deadline (125), so the window is free again
    assert turn(lambda s: s.begin("c", 131.0, 156.0))[0] == 0.0
    assert turn(lambda s: s.begin("d", 132.0, 157.0))[0] > 0  # after the 429 the window is one request


def test_stored_manners_reuse_their_store_connections_across_short_lived_threads(postgres_url: str) -> None:
    from digest.store.postgres import PostgresStore

    opened: list[PostgresStore] = []

    def opener() -> PostgresStore:
        opened.append(PostgresStore(postgres_url))
        return opened[-1]

    manners = StoredManners(opener, most=4, floor=0.0)
    for n in range(40):  # a poll's threads come and go (a connection kept per thread exhausted the pool at 32)
        begin = functools.partial(SharedPace.begin, flight=str(n), now=1.0, until=9.0)
        thread = threading.Thread(target=manners.change, args=("http://a.example:80", begin))
        thread.start()
        thread.join()
    assert len(opened) == 1  # one connection, kept for every change since
    assert manners.change("http://a.example:80", lambda shared: len(shared.flights)) == 4  # the window, shared
    opened[0].close()
