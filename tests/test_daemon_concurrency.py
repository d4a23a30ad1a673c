"""`digest daemon` under slow sources: the real CLI in a subprocess, feeds on loopback, real time.

Polls run concurrently: sources that never answer, or whose text takes seconds of CPU
to extract, delay no other source and no edition.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path

import pytest

from conftest import REPO
from httpserver import LocalServer, hang

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

HEALTHY, HANGING = 40, 6
NAMES = [*(f"feed{n}" for n in range(HEALTHY)), *(f"hang{n}" for n in range(HANGING))]


def feed(number: int) -> str:
    items = "".join(
        f"<item><guid>feed{number}-{entry}</guid><title>Harbour report {number}.{entry}</title>"
        f"<pubDate>Sun, 29 Nov 2026 06:00:00 GMT</pubDate><description>The council said on Monday that harbour works "
        f"in district {number} would start next spring. Officials expect the work to take months. Residents welcomed "
        f"the news at a meeting on Tuesday.</description></item>"
        for entry in range(2)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {number}</title>{items}</channel></rss>'


@contextmanager
def feed_servers() -> Iterator[tuple[list[LocalServer], list[LocalServer]]]:
    """40 healthy feeds and 6 that never answer, each on its own server (its own host for manners)."""
    with ExitStack() as stack:
        healthy = [stack.enter_context(LocalServer()) for _ in range(HEALTHY)]
        for number, server in enumerate(healthy):
            server.serve("/feed.xml", feed(number), "application/rss+xml")
        hanging = [stack.enter_context(LocalServer()) for _ in range(HANGING)]
        for server in hanging:
            server.route("/feed.xml", hang)
        yield healthy, hanging


def config_text(healthy: list[LocalServer], hanging: list[LocalServer], extra_sources: str = "") -> str:
    named = [*((f"hang{n}", s) for n, s in enumerate(hanging)), *((f"feed{n}", s) for n, s in enumerate(healthy))]
    sources = "".join(
        f'\n[[sources]]\nname = "{name}"\ntype = "feed"\nurl = "{server.url("/feed.xml")}"\ninterval = "1m"\nfull_text = "never"\n'
        for name, server in named
    )
    return f"""
[store]
path = "state/digest.sqlite3"

[fetch]
timeout = "5s"
allow_private = true
{sources}{extra_sources}
[[digests]]
name = "often"
schedule = "every 3s"
output_dir = "out"
formats = ["md"]
"""


Entries = list[dict[str, object]]


def read_log(path: Path) -> Entries:
    """The JSON log lines written so far (a line being written is left out)."""
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            pass
    return entries


def messages(entries: Entries, prefix: str) -> list[dict[str, object]]:
    return [e for e in entries if str(e["message"]).startswith(prefix)]


def editions(entries: Entries) -> list[dict[str, object]]:
    """One line per edition job: an edition made, or nothing new to make one of."""
    return [
        e for e in messages(entries, "edition of often") if " made" in str(e["message"]) or "nothing new" in str(e["message"])
    ]


def run_daemon(folder: Path, done: Callable[[Entries], bool], timeout: float = 300) -> Entries:
    """Start the real daemon, wait (with a deadline) until its log shows `done`, stop it with SIGTERM
    (it must exit within 10 s); its JSON log lines. The deadline only says when to give up: the heavy source's
    10 s of CPU took 47 s of wall time beside three busy processes, and a parallel test run can be busier."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    environment["PYTHONPATH"] = str(REPO)
    log_path = folder / "daemon.log"
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "digest", "--config", str(folder / "digest.toml"), "--log-format", "json", "daemon"],
            cwd=folder,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            deadline = time.monotonic() + timeout
            while not done(read_log(log_path)):
                assert process.poll() is None, log_path.read_text(encoding="utf-8")[-3000:]
                assert time.monotonic() < deadline, log_path.read_text(encoding="utf-8")[-3000:]
                time.sleep(0.2)
            process.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
            assert process.wait(timeout=12) == 0
            assert time.monotonic() - stopped < 10
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return read_log(log_path)


def moment(entry: dict[str, object]) -> float:
    return datetime.fromisoformat(str(entry["time"])).timestamp()


def settled(entries: Entries, sources: list[str]) -> bool:
    """True once every source in `sources` ended its first poll and two more editions followed."""
    polls = {str(e["message"]).split()[1]: moment(e) for e in messages(entries, "source ") if " polled: " in str(e["message"])}
    if not all(name in polls for name in sources):
        return False
    last = max(polls[name] for name in sources)
    return sum(moment(e) > last for e in editions(entries)) >= 2


def check_rhythm(entries: Entries, healthy: list[LocalServer]) -> None:
    """Every healthy feed polled (its server asked) within 5 s of start, and its poll ended (articles stored);
    editions every 3 s with no gap over 5 s."""
    [start] = [moment(e) for e in entries if str(e["message"]).startswith("daemon started")]
    asked = {f"feed{n}": min((r.at for r in server.requests), default=float("inf")) - start for n, server in enumerate(healthy)}
    late = {name: round(after, 1) for name, after in asked.items() if after > 5}
    assert not late, f"healthy feeds first asked more than 5 s after start: {late}"
    ended = {
        str(e["message"]).split()[1]
        for e in entries
        if str(e["message"]).startswith("source ") and " polled: 2 new" in str(e["message"])
    }
    assert ended >= set(asked), sorted(set(asked) - ended)
    times = [moment(e) - start for e in editions(entries)]
    assert len(times) >= 3, times
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    assert times[0] <= 5 and max(gaps) <= 5, f"edition jobs ended at (s after start): {[round(t, 1) for t in times]}"


def big_page(report: int, paragraphs: int = 12_000) -> str:
    """An HTML document whose main text takes seconds of CPU to extract."""
    body = "".join(
        f"<div class='c{n % 50}'><p>Paragraph {n} of report {report} says the council met on Monday to discuss item {n} "
        f"of the harbour plan, and more words follow here.</p><a href='/x{n}'>link {n}</a></div>"
        for n in range(paragraphs)
    )
    return f"<html><head><title>A very long report, number {report}</title></head><body><article>{body}</article></body></html>"


@pytest.mark.long
def test_hanging_feeds_and_a_source_that_takes_seconds_of_cpu_delay_no_other_feed_and_no_edition(tmp_path: Path) -> None:
    """One daemon for both of the issue's cases (each would start its own daemon, 46 servers and summary worker):
    6 feeds that never answer and a source whose parsing takes about 10 s of CPU, at once, beside 40 healthy feeds."""
    heavy = tmp_path / "heavy"
    heavy.mkdir()
    for number in range(4):  # each at the extractor's 2 MB cap of HTML: about 2.5 s of one core, 10 s in all
        (heavy / f"report-{number}.html").write_text(big_page(number), encoding="utf-8")
    extra = '\n[[sources]]\nname = "heavy"\ntype = "files"\npath = "heavy"\ninterval = "1m"\n'
    with feed_servers() as (healthy, hanging):
        (tmp_path / "digest.toml").write_text(config_text(healthy, hanging, extra), encoding="utf-8")
        entries = run_daemon(tmp_path, lambda log: settled(log, ["heavy", *NAMES]))
    check_rhythm(entries, healthy)
    hung = [str(e["message"]) for e in entries if str(e["message"]).startswith("source hang")]
    assert len(hung) == HANGING and all("no complete response within 5s" in m for m in hung), hung
    [heavy_poll] = [e for e in messages(entries, "source heavy polled")]
    assert heavy_poll["message"] == "source heavy polled: 4 new"
    [start] = [moment(e) for e in entries if str(e["message"]).startswith("daemon started")]
    during = [moment(e) - start for e in editions(entries) if moment(e) < moment(heavy_poll)]
    assert len(during) >= 2, f"editions made while the heavy source was parsed (s after start): {during}"
