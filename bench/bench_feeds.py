"""Benchmark: `digest run` over many feeds served on loopback.

Measures, for each feed count, the wall time and the peak resident memory of
the real CLI process (a subprocess; peak from wait4's rusage). Flat memory means
the peak barely grows with the number of feeds: articles are stored and
summarised as they arrive, never gathered first. A second series compares
polling with `[fetch] concurrency = 1` and 8 when every response takes
`--latency` seconds (all feeds on one host; bench/run.py measures 500 hosts).

    python bench/bench_feeds.py                         # 25, 50, 100, 200 feeds, 3 runs each
    python bench/bench_feeds.py --feeds 200 --runs 1
Results are printed as JSON lines; copy the medians into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.httpserver import LocalServer, RequestHandler  # noqa: E402

NOW = datetime(2026, 11, 27, 7, 0, tzinfo=timezone.utc)
WORDS = "harbour ferry terminal council budget river bridge station school hospital market festival".split()


def feed_xml(feed: int, entries: int) -> bytes:
    """An RSS feed whose entries carry full text (no page fetches), unique per feed."""
    items = []
    for entry in range(entries):
        sentences = " ".join(
            f"Report {feed}-{entry} sentence {n} notes the {WORDS[(feed + entry + n) % len(WORDS)]} plans were revised on day {n}."
            for n in range(40)
        )
        date = format_datetime(NOW - timedelta(minutes=10 * entry + 1))
        items.append(
            f"<item><title>Story {feed}-{entry}</title><guid isPermaLink='false'>f{feed}e{entry}</guid>"
            f"<link>http://example.org/{feed}/{entry}</link><pubDate>{date}</pubDate><description>{sentences}</description></item>"
        )
    return f"<?xml version='1.0'?><rss version='2.0'><channel><title>Feed {feed}</title>{''.join(items)}</channel></rss>".encode()


def write_config(folder: Path, server: LocalServer, feeds: int, concurrency: int) -> Path:
    sources = "".join(
        f'\n[[sources]]\nname = "feed{n}"\ntype = "feed"\nurl = "{server.url(f"/feed{n}.xml")}"\n' for n in range(feeds)
    )
    config = folder / "digest.toml"
    config.write_text(
        f'[store]\npath = "state.sqlite3"\n\n[fetch]\nallow_private = true\nper_host_delay = "0s"\n'
        f"per_host_concurrency = {concurrency}\nconcurrency = {concurrency}\n{sources}\n"
        '[[digests]]\nname = "daily"\nmax_articles = 20\noutput_dir = "out"\nformats = ["txt"]\n'
    )
    return config


def run_once(server: LocalServer, feeds: int, concurrency: int) -> dict[str, float]:
    """One `digest run --json` in a fresh folder: seconds, peak RSS (MB), articles stored."""
    with tempfile.TemporaryDirectory() as folder:
        config = write_config(Path(folder), server, feeds, concurrency)
        env = {**os.environ, "PYTHONPATH": str(REPO), "DIGEST_NOW": NOW.isoformat()}
        output = Path(folder) / "report.json"
        started = time.monotonic()
        with output.open("wb") as stdout:
            process = subprocess.Popen(
                [sys.executable, "-m", "digest", "--config", str(config), "run", "--json"],
                cwd=folder,
                env=env,
                stdout=stdout,
                stderr=subprocess.DEVNULL,
            )
            _, _status, usage = os.wait4(process.pid, 0)  # this child's own rusage, peak RSS included
            process.returncode = 0
        seconds = time.monotonic() - started
        report = json.loads(output.read_text())
        errors = [s["error"] for s in report["sources"] if s["error"]]
        if errors:
            raise SystemExit(f"sources failed: {errors[:3]}")
        stored = sum(s["new_articles"] for s in report["sources"])
        return {"seconds": seconds, "peak_mb": usage.ru_maxrss / 1024, "articles": stored}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", default="25,50,100,200", help="comma-separated feed counts")
    parser.add_argument("--entries", type=int, default=5, help="entries per feed")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds each response waits (concurrency series)")
    parser.add_argument("--latency-feeds", type=int, default=40)
    args = parser.parse_args()
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
                "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
            }
        )
    )
    with LocalServer() as server:
        counts = [int(n) for n in args.feeds.split(",")]
        for n in range(max(counts + [args.latency_feeds])):
            server.serve(f"/feed{n}.xml", feed_xml(n, args.entries), "application/rss+xml")
        for feeds in counts:
            runs = [run_once(server, feeds, 8) for _ in range(args.runs)]
            print(
                json.dumps(
                    {
                        "series": "memory",
                        "feeds": feeds,
                        "entries_per_feed": args.entries,
                        "runs": args.runs,
                        "median_seconds": round(statistics.median(r["seconds"] for r in runs), 2),
                        "median_peak_mb": round(statistics.median(r["peak_mb"] for r in runs), 1),
                        "articles": runs[0]["articles"],
                    }
                ),
                flush=True,
            )

        body = {n: feed_xml(n, 1) for n in range(args.latency_feeds)}

        def slow(number: int):
            def handler(request: RequestHandler) -> None:
                time.sleep(args.latency)
                request.respond(200, body[number], "application/rss+xml")

            return handler

        for n in range(args.latency_feeds):
            server.route(f"/feed{n}.xml", slow(n))
        for concurrency in (1, 8):
            runs = [run_once(server, args.latency_feeds, concurrency) for _ in range(args.runs)]
            print(
                json.dumps(
                    {
                        "series": "concurrency",
                        "feeds": args.latency_feeds,
                        "latency_s": args.latency,
                        "concurrency": concurrency,
                        "runs": args.runs,
                        "median_seconds": round(statistics.median(r["seconds"] for r in runs), 2),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
