"""`digest worker` processes sharing one PostgreSQL store: summarising scale-out and feeds shared by workers.

    python bench/workers.py summarise --articles 2000 --workers 1 2 --runs 5
    python bench/workers.py feeds --feeds 300 --interval 30s --workers 3 --seconds 100
    python bench/workers.py tick --feeds 5000 --runs 5
    python bench/workers.py manners --requests 1000 --runs 3
    python bench/workers.py scale --feeds 5000 --hosts 50 --interval 300s --workers 3 --concurrency 4 --seconds 420

summarise: ARTICLES files in 8 files sources (polls store them waiting for their summary and defer summary
tasks of 25 articles, which every worker takes), timed from the files appearing (the workers running, each
source polled once, the summariser loaded) until every article is stored with its summary; also the CPU seconds the worker
processes spent in that time (from /proc), which a loaded machine does not change as much as the wall time.
feeds: FEEDS loopback feeds polled every INTERVAL by WORKERS workers for SECONDS; each worker logs every poll it
starts, so the gaps between two polls of one feed show whether any feed was polled twice in an interval.
scale: FEEDS loopback feeds spread over HOSTS hosts (bench/feedserver.py, one asyncio loop), polled every INTERVAL
by WORKERS workers of CONCURRENCY tasks for SECONDS; polls counted from the servers' access log, with the tick's
duration, the poll queue's depth every 5 s and the workers' CPU.
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
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta, timezone
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


def start(config: Path, count: int, logs: Path, concurrency: int = 1) -> list[subprocess.Popen[bytes]]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")} | {"PYTHONPATH": str(REPO)}
    return [
        subprocess.Popen(
            [sys.executable, "-m", "digest", "--config", str(config), "--log-level", "info", "worker"]
            + ["--concurrency", str(concurrency)],
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


def count(db: psycopg.Connection[tuple[int]]) -> int:
    """Articles stored with their summary."""
    try:
        return int(db.execute("SELECT COUNT(*) FROM articles WHERE summary_pending = 0").fetchone()[0])  # type: ignore[index]
    except psycopg.errors.UndefinedTable:
        return 0


def process_cpu(pid: int) -> float:
    """CPU seconds a process has used so far (cpu_seconds); 0 when it is gone."""
    try:
        return cpu_seconds(pid)
    except OSError:
        return 0.0


def workers_cpu(processes: list[subprocess.Popen[bytes]]) -> float:
    """CPU seconds the processes have used so far."""
    return sum(process_cpu(process.pid) for process in processes)


def server_cpu(db: psycopg.Connection[tuple[int]]) -> dict[int, float]:
    """CPU seconds used so far by each PostgreSQL backend serving the run's database but `db`'s own (a backend
    that ended before this is not counted: the workers keep theirs in pools)."""
    rows = db.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid != pg_backend_pid()")
    return {pid: process_cpu(pid) for (pid,) in rows.fetchall()}


def poll_now(config: Path, url: str, sources: list[str]) -> None:
    """Make each source due (its last poll two hours back) and defer one poll of each, as the workers' tick
    does when a source is due (with its locks)."""
    from digest.config import load
    from digest.worker import make_app

    with psycopg.connect(url) as db:
        back = (datetime.now(timezone.utc) - timedelta(hours=2)).isoformat()
        db.execute("UPDATE sources SET last_poll = %s WHERE name = ANY(%s)", (back, sources))
    app = make_app(load(config))
    with app.open():
        task = app.tasks["digest.poll"]
        for source in sources:
            task.configure(queueing_lock=f"poll:{source}", lock=f"poll:{source}").defer(source=source)


def summarise(articles: int, workers: int) -> tuple[float, float, float]:
    """Seconds from `articles` files appearing in 8 files sources (`workers` workers already running, each
    source's first poll done; then one poll of each deferred, as the tick does when they are due) until all of
    them are stored, summarised; the CPU seconds the workers used meanwhile, and those PostgreSQL used for them. Sources are polled once an
    hour otherwise: polls that find nothing new would cost CPU in step with the wall time, not the work."""
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
            sources.append(f'[[sources]]\nname = "s{source}"\ntype = "files"\npath = "{root / f"s{source}"}"\ninterval = "1h"\n')
        config = root / "digest.toml"
        config.write_text(
            f'[store]\nurl = "{url}"\n\n[summary]\nworkers = 0\n\n'
            + "\n".join(sources)
            + f'\n[[digests]]\nname = "daily"\nschedule = "0 7 * * *"\noutput_dir = "{root / "out"}"\n'
        )
        running = start(config, workers, root)
        db = psycopg.connect(url, autocommit=True)  # one connection watches the run (the server has few to spare)
        try:

            def ready() -> bool:
                try:
                    registered = db.execute("SELECT COUNT(*) FROM procrastinate_workers").fetchone()[0]  # type: ignore[index]
                    polled = db.execute("SELECT COUNT(*) FROM sources WHERE first_poll IS NOT NULL").fetchone()[0]  # type: ignore[index]
                except psycopg.errors.UndefinedTable:
                    return False
                loaded = sum("summariser loaded" in log.read_text(errors="replace") for log in root.glob("worker-*.log"))
                return registered == workers and polled == 8 and loaded == workers

            while not ready():
                time.sleep(0.2)
            started, cpu_before, server_before = time.monotonic(), workers_cpu(running), server_cpu(db)
            for source in range(8):
                for path in (root / f"staged{source}").iterdir():
                    path.rename(root / f"s{source}" / path.name)
            poll_now(config, url, [f"s{source}" for source in range(8)])
            while count(db) < articles:
                if any(w.poll() is not None for w in running):
                    raise SystemExit(f"a worker exited: {(root / 'worker-0.log').read_text()[-2000:]}")
                time.sleep(0.1)
            wall, cpu, server_after = time.monotonic() - started, workers_cpu(running) - cpu_before, server_cpu(db)
            return wall, cpu, sum(after - server_before.get(pid, 0.0) for pid, after in server_after.items())
        finally:
            db.close()
            stop(running)


def feed(number: int) -> bytes:
    now = format_datetime(datetime.now().astimezone())
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {number}</title><item><guid>f{number}</guid>'
        f"<title>Feed {number} report</title><pubDate>{now}</pubDate><description>The harbour of district {number} "
        f"reopens next spring after repairs to the quay and the north pier, the council said.</description></item>"
        "</channel></rss>"
    ).encode()


def feed_sources(links: dict[str, str], interval: float) -> str:
    """The config's [[sources]] tables: one feed per name -> link, each polled every `interval` seconds."""
    return "".join(
        f'[[sources]]\nname = "{name}"\ntype = "feed"\nurl = "{link}"\ninterval = "{int(interval)}s"\n'
        for name, link in links.items()
    )


def feeds(total: int, interval: float, workers: int, seconds: float) -> dict[str, object]:
    """Polls per feed and the shortest gap between two polls of one feed, over `seconds`."""
    with (
        tempfile.TemporaryDirectory() as folder,
        database() as url,
        FeedServer({f"/f{n}.xml": feed(n) for n in range(total)}, etags=True) as server,
    ):
        root = Path(folder)
        sources = feed_sources({f"f{n}": server.url(f"/f{n}.xml") for n in range(total)}, interval)
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


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a running process has used (/proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backends(database: str) -> list[int]:
    """The PostgreSQL server processes serving connections to `database` (their titles name it)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if entry.name.isdigit() and title.startswith("postgres: ") and f" {database} " in title:
            found.append(int(entry.name))
    return found


def scale(total: int, hosts: int, interval: float, workers: int, concurrency: int, seconds: float) -> dict[str, object]:
    """`total` loopback feeds on `hosts` hosts (one asyncio loop), polled every `interval` seconds by `workers`
    workers for `seconds`: polls per feed counted from the servers' access log, the gaps between two polls of
    a feed, the tick's duration (its log lines), the poll queue's depth over time and the workers' CPU."""
    access: list[tuple[float, str]] = []
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = stack.enter_context(database())
        servers = [
            stack.enter_context(
                FeedServer({f"/f{n}.xml": feed(n) for n in range(h, total, hosts)}, etags=True, access_log=access)
            )
            for h in range(hosts)
        ]
        names = {servers[n % hosts].url(f"/f{n}.xml"): f"f{n}" for n in range(total)}
        sources = feed_sources({name: link for link, name in names.items()}, interval)
        config = root / "digest.toml"
        config.write_text(
            f'[store]\nurl = "{url}"\n\n[summary]\nworkers = 0\n\n[fetch]\nallow_private = true\n\n{sources}\n'
            f'[[digests]]\nname = "daily"\nschedule = "0 7 * * *"\noutput_dir = "{root / "out"}"\n'
        )
        began = time.time()
        running = start(config, workers, root, concurrency)
        queue: list[tuple[float, int, int]] = []  # (seconds since start, poll jobs waiting, running)
        try:
            with psycopg.connect(url, autocommit=True) as db:
                while time.time() - began < seconds:
                    try:
                        rows = dict(
                            db.execute(
                                "SELECT status::text, COUNT(*) FROM procrastinate_jobs WHERE task_name = 'digest.poll' GROUP BY 1"
                            ).fetchall()
                        )
                        queue.append((time.time() - began, rows.get("todo", 0), rows.get("doing", 0)))
                    except psycopg.errors.UndefinedTable:
                        pass
                    if any(w.poll() is not None for w in running):
                        raise SystemExit(f"a worker exited: {(root / 'worker-0.log').read_text()[-2000:]}")
                    time.sleep(5)
            cpu = [cpu_seconds(w.pid) for w in running]
            database_cpu = sum(cpu_seconds(pid) for pid in backends(url.rsplit("/", 1)[1]))
            ran = time.time() - began
        finally:
            stop(running)
        logs = "".join(p.read_text(errors="replace") for p in root.glob("worker-*.log"))
    polls: dict[str, list[float]] = defaultdict(list)
    for at, link in access:
        if link in names:
            polls[names[link]].append(at)
    first = min(at for times in polls.values() for at in times)
    end = first + (ran - (first - began))
    gaps = sorted(b - a for times in polls.values() for a, b in zip(sorted(times), sorted(times)[1:]))
    first_interval = [sum(first <= at < first + interval for at in polls.get(f"f{n}", [])) for n in range(total)]
    # a feed first polled at t is due again at t + interval: missed if that was 10 s before the end and no poll came
    overdue = [name for name, times in polls.items() if len(times) == 1 and min(times) + interval + 10 < end]
    ticks = [(int(n), float(t)) for n, t in re.findall(r"tick: (\d+) polls deferred, ([\d.]+) s", logs)]
    by_worker = Counter(re.findall(r"poll started \(worker process (\d+)\)", logs))
    return {
        "run s": round(ran),
        "feeds polled": len(polls),
        "first interval: polled once / twice or more / not at all": (
            first_interval.count(1),
            sum(c > 1 for c in first_interval),
            first_interval.count(0),
        ),
        "last first poll s after the first": round(max(min(t) for t in polls.values()) - first, 1),
        "second polls": sum(len(t) >= 2 for t in polls.values()),
        "gaps under the interval": sum(g < interval for g in gaps),
        "gap s min / median / max": (round(gaps[0], 2), round(statistics.median(gaps), 2), round(gaps[-1], 2)) if gaps else None,
        "missed (second poll due 10 s before the end, none came)": len(overdue),
        "ticks that deferred": len(ticks),
        "tick s median / max": (round(statistics.median(t for _, t in ticks), 3), round(max(t for _, t in ticks), 3))
        if ticks
        else None,
        "most polls in one tick": max((n for n, _ in ticks), default=0),
        "polls by worker": sorted(by_worker.values()),
        "worker CPU s (share of a core)": [f"{c:.0f} ({c / ran:.0%})" for c in cpu],
        "PostgreSQL CPU s of the workers' connections still open": round(database_cpu),
        "CPU ms per poll (its summary included), workers / PostgreSQL": (
            round(1000 * sum(cpu) / max(1, sum(len(t) for t in polls.values()))),
            round(1000 * database_cpu / max(1, sum(len(t) for t in polls.values()))),
        ),
        "load average at the end": os.getloadavg(),
        "poll queue (s: waiting, running)": [f"{t:.0f}: {w}, {r}" for t, w, r in queue[:: max(1, len(queue) // 30)]],
    }


def tick(total: int, runs: int) -> dict[str, object]:
    """What the tick's work costs at `total` sources, median of `runs`: the store's answer to "which sources
    are due" the old way (every source's history read, then due-ness per source in Python) against
    claim_due_polls, when all are due and when a 5-minute interval spreads them (1/300th due), and
    deferring all of them as poll jobs in batches of 500."""
    import asyncio
    from datetime import timedelta, timezone

    from digest import worker
    from digest.config import load
    from digest.jobs import read_history
    from digest.scheduler import next_poll
    from digest.store import open_store

    with tempfile.TemporaryDirectory() as folder, database() as url:
        root = Path(folder)
        sources = feed_sources({f"f{n}": f"http://127.0.0.1:9/f{n}.xml" for n in range(total)}, 300)
        path = root / "digest.toml"
        path.write_text(
            f'[store]\nurl = "{url}"\n\n{sources}\n[[digests]]\nname = "daily"\nschedule = "0 7 * * *"\n'
            f'output_dir = "{root / "out"}"\n'
        )
        config = load(path)
        app = worker.make_app(config)
        worker.migrate(config, app)
        store = open_store(config.store)
        timings: dict[str, list[float]] = defaultdict(list)
        now = datetime.now(timezone.utc)

        def timed(name: str, work: Callable[[], object]) -> object:
            began = time.perf_counter()
            result = work()
            timings[name].append(time.perf_counter() - began)
            return result

        for run in range(runs):
            with store.transaction():  # every source polled, spread over the interval
                for n in range(total):
                    store.record_poll(f"f{n}", now - timedelta(seconds=300 * n / total), {})
            moment = now + timedelta(seconds=1 + run)  # about total/300 sources due
            history = timed("old: read history, due in Python (1/300 due)", lambda: read_history(config, store))
            due_then = [
                s.name
                for s in config.sources
                if next_poll(s, history.last_polls.get(s.name), moment, history.polls_not_before.get(s.name)) <= moment  # type: ignore[attr-defined]
            ]
            claimed = timed("claim_due_polls (1/300 due)", lambda: store.claim_due_polls(moment, worker.POLL_CLAIM, 2000))
            assert len(claimed) == len(due_then), (len(claimed), len(due_then))  # type: ignore[arg-type]
            late = now + timedelta(seconds=400)  # all due
            every = timed(
                "claim_due_polls (all due, at most 500 a tick)",
                lambda: store.claim_due_polls(late, worker.POLL_CLAIM, worker.POLLS_PER_TICK),
            )
            poll = app.tasks["digest.poll"]

            async def defer_all(names: list[str]) -> None:
                async with app.open_async():
                    for first in range(0, len(names), worker.DEFER_BATCH):
                        jobs = [
                            poll.configure(queueing_lock=f"poll:{s}", lock=f"poll:{s}").make_new_job(source=s)
                            for s in names[first : first + worker.DEFER_BATCH]
                        ]
                        await app.job_manager.batch_defer_jobs_async(jobs)

            timed("defer those polls, 500 to an insert", lambda: asyncio.run(defer_all(every)))  # type: ignore[arg-type]
            with psycopg.connect(url, autocommit=True) as db:
                db.execute("DELETE FROM procrastinate_jobs")
                db.execute("UPDATE sources SET poll_claimed_until = NULL")
        store.close()
    return {
        name: f"median {statistics.median(t) * 1000:.0f} ms ({', '.join(f'{x * 1000:.0f}' for x in t)})"
        for name, t in timings.items()
    }


def manners(requests: int, runs: int) -> dict[str, object]:
    """The cost of per-host manners held in the store (digest worker) against held in the process: `requests`
    fetches of one loopback host by 4 threads, interleaved runs; wall, this process's CPU, PostgreSQL's CPU."""
    from concurrent.futures import ThreadPoolExecutor

    from digest.config import FetchConfig, StoreConfig
    from digest.fetch import Fetcher
    from digest.manners import StoredManners
    from digest.store import open_store

    measured: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    with database() as url, FeedServer({f"/f{n}.xml": feed(n) for n in range(requests)}) as server:
        store = StoreConfig(url=url)
        open_store(store).close()
        for _ in range(runs):
            for kind in ("in the process", "in the store"):
                shared = StoredManners(lambda: open_store(store), 4, 0.0) if kind == "in the store" else None
                with Fetcher(FetchConfig(allow_private=True), shared=shared) as fetcher:
                    server_before = sum(cpu_seconds(pid) for pid in backends(url.rsplit("/", 1)[1]))
                    wall, cpu = time.perf_counter(), time.process_time()
                    with ThreadPoolExecutor(4) as pool:
                        list(pool.map(lambda n: fetcher.fetch(server.url(f"/f{n}.xml")), range(requests)))
                    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                    server_cpu = sum(cpu_seconds(pid) for pid in backends(url.rsplit("/", 1)[1])) - server_before
                measured[kind].append((wall, cpu, server_cpu))
    return {
        kind: (
            f"median {statistics.median(w for w, _, _ in runs_):.2f} s wall, "
            f"{1000 * statistics.median(c for _, c, _ in runs_) / requests:.2f} ms CPU per request here, "
            f"{1000 * statistics.median(p for _, _, p in runs_) / requests:.2f} ms in PostgreSQL"
        )
        for kind, runs_ in measured.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["summarise", "feeds", "scale", "tick", "manners"])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--feeds", type=int, default=300)
    parser.add_argument("--interval", default="30s")
    parser.add_argument("--seconds", type=float, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=1)
    arguments = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stopped: the workers are stopped and the database dropped
    if arguments.mode == "summarise":
        # interleaved (1, 2, 1, 2, ...): a change in the machine's load meanwhile falls on both alike
        measured: dict[int, list[tuple[float, float, float]]] = defaultdict(list)
        for _ in range(arguments.runs):
            for workers in arguments.workers:
                measured[workers].append(summarise(arguments.articles, workers))
                wall, cpu, server = measured[workers][-1]
                print(
                    f"  {workers} worker(s): {wall:.2f} s wall, {cpu:.2f} CPU s workers, {server:.2f} CPU s PostgreSQL",
                    flush=True,
                )
        medians = {}
        for workers, runs in measured.items():
            wall = statistics.median(t for t, _, _ in runs)
            cpu = statistics.median(c for _, c, _ in runs)
            server = statistics.median(p for _, _, p in runs)
            medians[workers] = wall
            print(
                f"{arguments.articles} articles, {workers} worker(s): median {wall:.2f} s wall "
                f"({', '.join(f'{t:.2f}' for t, _, _ in runs)}), {arguments.articles / wall:.0f} articles/s; "
                f"median CPU s: workers {cpu:.2f} ({', '.join(f'{c:.2f}' for _, c, _ in runs)}), PostgreSQL {server:.2f}"
            )
        fewest = min(medians)
        for workers, wall in sorted(medians.items()):
            if workers != fewest:
                print(f"speed-up {workers} against {fewest}: {medians[fewest] / wall:.2f}x")
    elif arguments.mode == "manners":
        print(f"{arguments.requests} requests to one host, 4 threads (load average {os.getloadavg()[0]:.1f}):")
        for name, value in manners(arguments.requests, arguments.runs).items():
            print(f"  manners {name}: {value}")
    elif arguments.mode == "tick":
        print(f"the tick's work at {arguments.feeds} sources (load average {os.getloadavg()[0]:.1f}):")
        for name, value in tick(arguments.feeds, arguments.runs).items():
            print(f"  {name}: {value}")
    elif arguments.mode == "scale":
        for workers in arguments.workers:
            print(f"{arguments.feeds} feeds on {arguments.hosts} hosts every {arguments.interval}, {workers} workers:")
            figures = scale(
                arguments.feeds,
                arguments.hosts,
                float(arguments.interval.rstrip("s")),
                workers,
                arguments.concurrency,
                arguments.seconds,
            )
            for name, value in figures.items():
                print(f"  {name}: {value}")
    else:
        for workers in arguments.workers:
            print(
                f"{arguments.feeds} feeds every {arguments.interval}, {workers} workers, {arguments.seconds:g} s:",
                feeds(arguments.feeds, float(arguments.interval.rstrip("s")), workers, arguments.seconds),
            )


if __name__ == "__main__":
    main()
