"""Per-host manners held across `digest worker` processes: three workers polling many feeds of two loopback
hosts at once never have more requests in flight to one host than it is allowed, a 429 with Retry-After
answered to one worker holds every worker's requests to that host back, and the other host's robots.txt
Crawl-delay, read by one worker, spaces every worker's requests to it."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO, Project
from tests.httpserver import LocalServer, RequestHandler

WINDOW_FEEDS = 16  # of the host that allows ALLOWED requests at once and answers one with 429
SPACED_FEEDS = 12  # of the host whose robots.txt asks for a second between requests (~12 s)
ALLOWED = 2  # [fetch] per_host_concurrency
ANSWER_SECONDS = 0.3
HOLD = 3  # the Retry-After of the one 429
OVERLOADED_REQUEST = 8  # the request answered 429


def feed(number: int) -> bytes:
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {number}</title><item><guid>f{number}</guid>'
        f"<title>Feed {number} report</title><description>The quay of district {number} reopens.</description></item>"
        "</channel></rss>"
    ).encode()


class Host:
    """A feed host answering in ANSWER_SECONDS that counts requests in flight; it answers its `overload`-th
    feed request with 429 and Retry-After: HOLD, and serves `robots` (else a 404) as its robots.txt."""

    def __init__(self, overload: int | None = None, robots: bytes | None = None) -> None:
        self.lock = threading.Lock()
        self.overload = overload
        self.robots = robots
        self.in_flight = 0
        self.most_in_flight = 0
        self.arrivals: list[tuple[float, str]] = []
        self.answered: set[str] = set()
        self.overloaded_at: float | None = None
        self.robots_answered: float | None = None

    def handle(self, request: RequestHandler) -> None:
        path = request.path.split("?")[0]
        with self.lock:
            self.arrivals.append((time.time(), path))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            feeds_asked = len([p for _, p in self.arrivals if p.endswith(".xml")])
            overload = path.endswith(".xml") and feeds_asked == self.overload
        try:
            time.sleep(ANSWER_SECONDS)  # the host's own answer time
            if overload:
                with self.lock:
                    self.overloaded_at = time.time()
                request.respond(429, b"slow down", "text/plain", {"Retry-After": str(HOLD)})
            elif path == "/robots.txt":
                request.respond(200, self.robots) if self.robots else request.respond(404, b"none")
                with self.lock:
                    self.robots_answered = self.robots_answered or time.time()
            elif path.endswith(".xml"):
                request.respond(200, feed(int(path[2:-4])), "application/rss+xml")
                with self.lock:
                    self.answered.add(path)
            else:
                request.respond(404, b"no page")  # an item's page: the feed's text is used
        finally:
            with self.lock:
                self.in_flight -= 1


def poll_all(tmp_path: Path, postgres_url: str, hosts: list[tuple[Host, int]]) -> str:
    """Three workers (4 tasks each) poll the given number of feeds of each host (a loopback server of its own:
    an origin of its own; interval 1 h: once each) until each was answered; their logs."""
    project = Project(tmp_path)
    with contextlib.ExitStack() as servers:
        sources = ""
        for letter, (host, feeds) in zip("ab", hosts):
            http = servers.enter_context(LocalServer())
            http.route("/robots.txt", host.handle)
            for n in range(feeds):
                http.route(f"/f{n}", host.handle)
                url = http.route(f"/f{n}.xml", host.handle)
                sources += f'[[sources]]\nname = "{letter}{n}"\ntype = "feed"\nurl = "{url}"\ninterval = "1h"\n\n'
        # one language for every article: the workers load no language detector (summarising is not under test)
        project.write_config(
            f'[store]\nurl = "{postgres_url}"\n\n[summary]\nworkers = 0\nlanguage = "english"\n\n[fetch]\n'
            f'allow_private = true\nper_host_concurrency = {ALLOWED}\nper_host_delay = "0s"\n\n{sources}'
            f'[[digests]]\nname = "daily"\nschedule = "0 7 * * *"\noutput_dir = "{tmp_path / "out"}"\n'
        )
        workers = [start_worker(project, n) for n in range(3)]

        def answered() -> bool:
            return all(len(host.answered) == feeds for host, feeds in hosts)

        try:
            deadline = time.monotonic() + 120
            while not answered() and time.monotonic() < deadline:
                if any(worker.poll() is not None for worker in workers):
                    break
                time.sleep(0.2)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                try:
                    worker.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    worker.kill()
    logs = "".join(p.read_text(errors="replace") for p in sorted(tmp_path.glob("worker-*.log")))
    counts = [f"{len(host.answered)} of {feeds}" for host, feeds in hosts]
    assert answered(), f"feeds answered: {counts}\n{logs[-3000:]}"
    return logs


def start_worker(project: Project, number: int) -> subprocess.Popen[bytes]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")} | {"PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "digest", "--config", str(project.config), "--log-level", "info", "worker"]
    log = open(project.root / f"worker-{number}.log", "wb")
    return subprocess.Popen([*command, "--concurrency", "4"], cwd=project.root, env=environment, stdout=log, stderr=log)


@pytest.mark.long
def test_workers_share_a_hosts_window_and_its_retry_after_and_another_hosts_crawl_delay(
    tmp_path: Path, postgres_url: str
) -> None:
    window = Host(overload=OVERLOADED_REQUEST)
    spaced = Host(robots=b"User-agent: *\nCrawl-delay: 1\n")
    logs = poll_all(tmp_path, postgres_url, [(window, WINDOW_FEEDS), (spaced, SPACED_FEEDS)])
    polling = set(re.findall(r"poll started \(worker process (\d+)\)", logs))
    assert len(polling) >= 2  # the feeds were shared by several workers

    assert window.most_in_flight <= ALLOWED  # 3 workers x 4 tasks, yet never more than the host allows
    assert window.overloaded_at is not None
    overloaded_at = window.overloaded_at
    held = [at - overloaded_at for at, _ in window.arrivals if overloaded_at + 0.5 < at < overloaded_at + HOLD - 0.1]
    assert held == []  # after the 429 no worker asked the host anything until its Retry-After had passed
    assert any(at >= overloaded_at + HOLD - 0.1 for at, _ in window.arrivals)  # then they went on

    # a worker reads robots.txt at a request after its first to the host
    assert spaced.robots_answered is not None
    # requests started before the first robots.txt was read may still arrive for a moment; after that,
    # one at a time and a second apart, whichever worker asks
    later = [at for at, _ in spaced.arrivals if at > spaced.robots_answered + ANSWER_SECONDS + 0.5]
    assert len(later) >= 6
    gaps = [b - a for a, b in zip(later, later[1:])]
    # starts are a second apart; arrivals differ from starts by each request's own latency on a busy machine
    assert statistics.median(gaps) >= 0.95 and min(gaps) >= 0.5
