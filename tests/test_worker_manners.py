"""Per-host manners held across `digest worker` processes: three workers polling many feeds of one loopback
host never have more requests in flight to it than the host is allowed, and a 429 with Retry-After answered
to one worker holds every worker's requests back."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


from conftest import REPO, Project
from tests.httpserver import LocalServer, RequestHandler

FEEDS = 30
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
    """A feed host answering in ANSWER_SECONDS that counts requests in flight, and answers its
    OVERLOADED_REQUEST-th request with 429 and Retry-After: HOLD."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        self.arrivals: list[tuple[float, str]] = []
        self.answered: set[str] = set()
        self.overloaded_at: float | None = None

    def handle(self, request: RequestHandler) -> None:
        path = request.path.split("?")[0]
        with self.lock:
            self.arrivals.append((time.time(), path))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            overload = path != "/robots.txt" and len([p for _, p in self.arrivals if p != "/robots.txt"]) == OVERLOADED_REQUEST
        try:
            time.sleep(ANSWER_SECONDS)  # the host's own answer time
            if overload:
                with self.lock:
                    self.overloaded_at = time.time()
                request.respond(429, b"slow down", "text/plain", {"Retry-After": str(HOLD)})
            elif path == "/robots.txt":
                request.respond(404, b"none")
            else:
                request.respond(200, feed(int(path[2:-4])), "application/rss+xml")
                with self.lock:
                    self.answered.add(path)
        finally:
            with self.lock:
                self.in_flight -= 1


def start_worker(project: Project, number: int) -> subprocess.Popen[bytes]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")} | {"PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "digest", "--config", str(project.config), "--log-level", "info", "worker"]
    log = open(project.root / f"worker-{number}.log", "wb")
    return subprocess.Popen([*command, "--concurrency", "4"], cwd=project.root, env=environment, stdout=log, stderr=log)


def test_workers_share_a_hosts_window_and_its_retry_after(tmp_path: Path, postgres_url: str) -> None:
    project = Project(tmp_path)
    host = Host()
    with LocalServer() as http:
        http.route("/robots.txt", host.handle)
        sources = "".join(
            f'[[sources]]\nname = "f{n}"\ntype = "feed"\nurl = "{http.route(f"/f{n}.xml", host.handle)}"\ninterval = "1h"\n\n'
            for n in range(FEEDS)
        )
        project.write_config(
            f'[store]\nurl = "{postgres_url}"\n\n[summary]\nworkers = 0\n\n[fetch]\nallow_private = true\n'
            f'per_host_concurrency = {ALLOWED}\nper_host_delay = "0s"\n\n{sources}'
            f'[[digests]]\nname = "daily"\nschedule = "0 7 * * *"\noutput_dir = "{tmp_path / "out"}"\n'
        )
        workers = [start_worker(project, n) for n in range(3)]
        try:
            deadline = time.monotonic() + 90
            while len(host.answered) < FEEDS and time.monotonic() < deadline:
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
    assert len(host.answered) == FEEDS, f"{len(host.answered)} of {FEEDS} feeds answered\n{logs[-3000:]}"
    polling = set(re.findall(r"poll started \(worker process (\d+)\)", logs))
    assert len(polling) >= 2  # the feeds were shared by several workers
    assert host.most_in_flight <= ALLOWED  # 3 workers x 4 tasks, yet never more than the host allows
    assert host.overloaded_at is not None
    held = [at - host.overloaded_at for at, _ in host.arrivals if host.overloaded_at + 0.5 < at < host.overloaded_at + HOLD - 0.1]
    assert held == []  # after the 429 no worker asked the host anything until its Retry-After had passed
    assert any(at >= host.overloaded_at + HOLD - 0.1 for at, _ in host.arrivals)  # then they went on
