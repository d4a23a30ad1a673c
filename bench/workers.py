"""`digest worker` processes sharing one PostgreSQL store: summarising scale-out and feeds shared by workers.

    python bench/workers.py summarise --articles 2000 --workers 1 2 --runs 2
    python bench/workers.py feeds --feeds 300 --interval 30s --workers 3 --seconds 100

summarise: ARTICLES files in 8 files sources (one poll per source, summarised in the polling worker with
[summary] workers = 0), timed from the workers' start until every article is stored.
feeds: FEEDS loopback feeds polled every INTERVAL by WORKERS workers for SECONDS; each worker logs every poll it
starts, so the gaps between two polls of one feed show whether any feed was polled twice in an interval.
Needs PostgreSQL (DIGEST_BENCH_POSTGRES, default postgresql://postgres@127.0.0.1:5432/postgres); each run
makes and drops a database of its own.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feedserver import FeedServer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SERVER = os.environ.get("DIGEST_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
SEED = next((REPO / "seeds").glob("*.txt")).read_text(encoding="utf-8")


@contextmanager
def database() -> Iterator[str]:
    name = f"digest_bench_{os.getpid()}_{time.monotonic_ns() % 10**6}"
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield SERVER.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(SERVER, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def start(config: Path, count: int, logs: Path) -> list[subprocess.Popen[bytes]]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")} | {"PYTHONPATH": str(REPO)}
    return [
        subprocess.Popen(
            [sys.executable, "-m", "digest", "--config", str(config), "--log-level", "info", "worker", "--concurrency", "1"],
            cwd=config.parent,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=open(logs / f"worker-{n}.log", "wb"),
        )
        for n in range(count)
    ]


def stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()


def count(url: str) -> int:
    with psycopg.connect(url) as db:
        try:
            return int(db.execute("SELECT COUNT(*) FROM articles").fetchone()[0])  # type: ignore[index]
        except psycopg.errors.UndefinedTable:
            return 0


def summarise(articles: int, workers: int) -> float:
    """Seconds from `articles` files appearing in 8 files sources (polled every second by `workers` workers
    already running, each source's first poll done) until all of them are stored, summarised."""
    with tempfile.TemporaryDirectory() as folder, database() as url:
        root = Path(folder)
        sources = []
        for source in range(8):
            (root / f"s{source}").mkdir()
            (root / f"staged{source}").mkdir()
            for n in range(source, articles, 8):
                (root / f"staged{source}" / f"a{n:05d}.txt").write_text(
                    f"Report {n} of the harbour\n\nItem {n} opens the day. {SEED}", encoding="utf-8"
                )
            sources.append(f'[[sources]]\nname = "s{source}"\ntype = "files"\npath = "{root / f"s{source}"}"\ninterval = "1s"\n')
        config = root / "digest.toml"
        config.write_text(
            f'[store]\nurl = "{url}"\n\n[summary]\nworkers = 0\n\n'
            + "\n".join(sources)
            + f'\n[[digests]]\nname = "daily"\nschedule = "0 7 * * *"\noutput_dir = "{root / "out"}"\n'
        )
        running = start(config, workers, root)
        try:

            def ready() -> bool:
                with psycopg.connect(url) as db:
                    try:
                        registered = db.execute("SELECT COUNT(*) FROM procrastinate_workers").fetchone()[0]  # type: ignore[index]
                        polled = db.execute("SELECT COUNT(*) FROM sources WHERE first_poll IS NOT NULL").fetchone()[0]  # type: ignore[index]
                    except psycopg.errors.UndefinedTable:
                        return False
                return registered == workers and polled == 8

            while not ready():
                time.sleep(0.2)
            started = time.monotonic()
            for source in range(8):
                for path in (root / f"staged{source}").iterdir():
                    path.rename(root / f"s{source}" / path.name)
            while count(url) < articles:
                if any(w.poll() is not None for w in running):
                    raise SystemExit(f"a worker exited: {(root / 'worker-0.log').read_text()[-2000:]}")
                time.sleep(0.1)
            return time.monotonic() - started
        finally:
            stop(running)


def feed(number: int) -> bytes:
    now = format_datetime(datetime.now().astimezone())
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {number}</title><item><guid>f{number}</guid>'
        f"<title>Feed {number} report</title><pubDate>{now}</pubDate><description>The harbour of district {number} "
        f"reopens next spring after repairs to the quay and the north pier, the council said.</description></item>"
        "</channel></rss>"
    ).encode()


def feeds(total: int, interval: float, workers: int, seconds: float) -> dict[str, object]:
    """Polls per feed and the shortest gap between two polls of one feed, over `seconds`."""
    with (
        tempfile.TemporaryDirectory() as folder,
        database() as url,
        FeedServer({f"/f{n}.xml": feed(n) for n in range(total)}, etags=True) as server,
    ):
        root = Path(folder)
        sources = "".join(
            f'[[sources]]\nname = "f{n}"\ntype = "feed"\nurl = "{server.url(f"/f{n}.xml")}"\ninterval = "{int(interval)}s"\n'
            for n in range(total)
        )
        config = root / "digest.toml"
        config.write_text(
            f'[store]\nurl = "{url}"\n\n[summary]\nworkers = 0\n\n[fetch]\nallow_private = true\n'
            f'per_host_delay = "0s"\n\n{sources}\n[[digests]]\nname = "daily"\nschedule = "0 7 * * *"\n'
            f'output_dir = "{root / "out"}"\n'
        )
        running = start(config, workers, root)
        time.sleep(seconds)
        stop(running)
        polls: dict[str, list[datetime]] = defaultdict(list)
        by_worker: dict[str, int] = defaultdict(int)
        for log in root.glob("worker-*.log"):
            for line in log.read_text(errors="replace").splitlines():
                found = re.match(r"(\S+ \S+) INFO source (f\d+): poll started \(worker process (\d+)\)", line)
                if found:
                    polls[found[2]].append(datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S,%f"))
                    by_worker[found[3]] += 1
        gaps = [(b - a).total_seconds() for times in polls.values() for a, b in zip(sorted(times), sorted(times)[1:])]
        return {
            "feeds polled": len(polls),
            "polls": sum(len(t) for t in polls.values()),
            "polls per feed": sorted({len(t) for t in polls.values()}),
            "polls by worker": sorted(by_worker.values()),
            "shortest gap s": round(min(gaps), 1) if gaps else None,
            "median gap s": round(statistics.median(gaps), 1) if gaps else None,
            "gaps under 0.9 interval": sum(gap < 0.9 * interval for gap in gaps),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["summarise", "feeds"])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--feeds", type=int, default=300)
    parser.add_argument("--interval", default="30s")
    parser.add_argument("--seconds", type=float, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=1)
    arguments = parser.parse_args()
    if arguments.mode == "summarise":
        for workers in arguments.workers:
            times = [summarise(arguments.articles, workers) for _ in range(arguments.runs)]
            print(
                f"{arguments.articles} articles, {workers} worker(s): median {statistics.median(times):.1f} s "
                f"({', '.join(f'{t:.1f}' for t in times)}), {arguments.articles / statistics.median(times):.1f} articles/s"
            )
    else:
        for workers in arguments.workers:
            print(
                f"{arguments.feeds} feeds every {arguments.interval}, {workers} workers, {arguments.seconds:g} s:",
                feeds(arguments.feeds, float(arguments.interval.rstrip("s")), workers, arguments.seconds),
            )


if __name__ == "__main__":
    main()
