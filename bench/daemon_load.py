"""The daemon under many feeds, some hanging and some slow: polls per interval, edition lateness, CPU and memory.

N feeds on loopback hosts of their own (bench/feedserver.py, one asyncio loop): 10% never answer
(the [fetch] timeout, 20 s by default, ends each try), 10% answer after 2 s, the rest at once. Every
interval a tenth of the healthy feeds gain an entry. One digest is made `every` so often. The real
`digest daemon` runs for `--minutes`; its JSON log says when each poll and edition ended, /proc what it cost.

    python bench/daemon_load.py --feeds 500 --interval 1m --every 1m --minutes 10
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feedserver import FeedServer  # noqa: E402
from measure import descendants, tree_memory  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SECONDS = {"s": 1, "m": 60, "h": 3600}


def seconds(text: str) -> float:
    return float(text[:-1]) * SECONDS[text[-1]]


def feed(number: int, entries: int) -> bytes:
    now = datetime.now().astimezone()
    items = "".join(
        f"<item><guid>feed{number}-{entry}</guid><title>Report {entry} from feed {number}</title>"
        f"<pubDate>{format_datetime(now - timedelta(minutes=entries - entry))}</pubDate>"
        f"<description>The council of district {number} said on Monday that harbour works (item {entry}) would start "
        f"next spring. Officials expect the work to take {entry % 9 + 2} months and to cost less than planned. Residents "
        f"welcomed the news at a meeting in the town hall on Tuesday evening.</description></item>"
        for entry in range(entries)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {number}</title>{items}</channel></rss>'.encode()


def tree_cpu(pid: int) -> float:
    """CPU seconds of the process, its live descendants, and the children it reaped (summary workers that ended)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for member in descendants(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if member == pid else 0)
    return total / ticks


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--interval", default="5m", help="every feed's poll interval")
    parser.add_argument("--every", default="1m", help="the digest's schedule: every ...")
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--work", type=Path, help="working folder [default: a temp folder]")
    options = parser.parse_args()
    interval, window = seconds(options.interval), options.minutes * 60
    work = options.work or Path(tempfile.mkdtemp(prefix="digest-daemon-load-"))
    work.mkdir(parents=True, exist_ok=True)
    hanging = set(range(0, options.feeds, 10))
    slow = set(range(1, options.feeds, 10))
    entries = {n: 10 for n in range(options.feeds)}
    with ExitStack() as stack:
        servers, sources = {}, []
        for number in range(options.feeds):
            host = f"127.0.{1 + number // 250}.{1 + number % 250}"
            delay = 10**6 if number in hanging else 2.0 if number in slow else 0.0
            server = stack.enter_context(FeedServer({"/feed.xml": feed(number, entries[number])}, delay, host))
            servers[number] = server
            sources.append(
                f'[[sources]]\nname = "feed{number}"\ntype = "feed"\nurl = "{server.url("/feed.xml")}"\n'
                f'interval = "{options.interval}"\nfull_text = "never"\n'
            )
        config = work / "digest.toml"
        config.write_text(
            '[store]\npath = "state/digest.sqlite3"\n\n[fetch]\nallow_private = true\n\n'
            + "\n".join(sources)
            + f'\n[[digests]]\nname = "bench"\nschedule = "every {options.every}"\noutput_dir = "out"\nformats = ["md"]\n',
            encoding="utf-8",
        )
        log_path = work / "daemon.log"
        stop_growing = threading.Event()

        def grow() -> None:  # a tenth of the healthy feeds publish an entry each interval
            turn = 0
            while not stop_growing.wait(interval):
                for number in range(options.feeds):
                    if number not in hanging and number % 10 == turn % 10 + 2:
                        entries[number] += 1
                        servers[number].documents["/feed.xml"] = feed(number, entries[number])
                turn += 1

        threading.Thread(target=grow, daemon=True).start()
        environment = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
        environment["PYTHONPATH"] = str(REPO)
        with open(log_path, "w", encoding="utf-8") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "digest", "--config", str(config), "--log-format", "json", "daemon"],
                cwd=work,
                env=environment,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
            samples: list[tuple[float, float, float]] = []  # (seconds since start, tree RSS MB, tree PSS MB)
            started = time.monotonic()
            try:
                while time.monotonic() - started < window and process.poll() is None:
                    time.sleep(5)
                    rss, pss = tree_memory(process.pid)
                    samples.append((time.monotonic() - started, rss / 1024, pss / 1024))
                cpu = tree_cpu(process.pid)
            finally:
                stop_growing.set()
                process.send_signal(signal.SIGTERM)
                stopping = time.monotonic()
                process.wait(timeout=30)
                stop_seconds = time.monotonic() - stopping
    entries_log = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines() if line.startswith("{")]
    moment = {id(e): datetime.fromisoformat(e["time"]).timestamp() for e in entries_log}
    [start] = [moment[id(e)] for e in entries_log if e["message"].startswith("daemon started")]
    [first_planned] = [
        datetime.fromisoformat(e["at"]).timestamp() for e in entries_log if e["message"].startswith("edition of bench next")
    ]
    end = start + window
    polls = Counter(
        e["message"].split()[1]
        for e in entries_log
        if e["message"].startswith("source ") and " polled: " in e["message"] and moment[id(e)] <= end
    )
    skipped = sum(1 for e in entries_log if e.get("skipped"))
    period = seconds(options.every)
    lateness = []
    for e in entries_log:
        if e["message"].startswith("edition of bench") and (" made" in e["message"] or "nothing new" in e["message"]):
            slot = first_planned + math.floor((moment[id(e)] - first_planned) / period) * period  # its scheduled time
            lateness.append(moment[id(e)] - slot)
    healthy = [n for n in range(options.feeds) if n not in hanging and n not in slow]
    expected = window / interval
    per_feed = {
        kind: [polls.get(f"feed{n}", 0) for n in members]
        for kind, members in (("healthy", healthy), ("slow", sorted(slow)), ("hanging", sorted(hanging)))
    }
    steady = [s for s in samples if s[0] > min(window / 2, 120)]
    result = {
        "feeds": options.feeds,
        "interval_s": interval,
        "every_s": period,
        "window_s": window,
        "expected_polls_per_feed": expected,
        "polls_per_feed": {kind: {"min": min(v), "median": statistics.median(v), "max": max(v)} for kind, v in per_feed.items()},
        "skipped_polls": skipped,
        "editions": len(lateness),
        "edition_lateness_s": {"median": statistics.median(lateness), "p90": percentile(lateness, 0.9), "max": max(lateness)}
        if lateness
        else None,
        "cpu_seconds": cpu,
        "cpu_share_of_one_core": cpu / window,
        "tree_rss_mb": {"peak": max(s[1] for s in samples), "steady_median": statistics.median(s[1] for s in steady or samples)},
        "tree_pss_mb": {"peak": max(s[2] for s in samples), "steady_median": statistics.median(s[2] for s in steady or samples)},
        "sigterm_to_exit_s": stop_seconds,
        "store_mb": sum(p.stat().st_size for p in (work / "state").glob("digest.sqlite3*")) / 1e6,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
