"""End-to-end benchmark of `digest run`, with stock sumy LexRank as the anchor.

    python bench/run.py [--sizes 500,2000,10000] [--runs 3] [--anchor-sizes SIZES]
                        [--workers auto] [--skip startup,feeds,daemon] [--json FILE]

For each size N it builds N articles (bench/corpus.py) as a `files` source and,
when the feed source type is available, as RSS feeds on a loopback HTTP server;
then it times `python -m digest run` (the real CLI, a fresh process, an empty
store) and, beside it, stock sumy LexRank summarising the same texts alone
(bench/anchor.py). It also times `digest --help` and `digest status` start-up,
a 500-feed poll against the slowest single feed, and an idle daemon. Figures
are medians over --runs; the tables print as Markdown for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import REPO, feeds, source_texts, write_files  # noqa: E402
from feedserver import FeedServer  # noqa: E402
from measure import Measured, descendants, measure, tree_memory  # noqa: E402

NOW = "2026-11-27T07:00:00+00:00"
PER_FEED = 50  # articles per feed when the corpus is served as feeds, each feed from a host of its own
CONCURRENT_FEEDS = 500
SLOW_FEED_DELAY = 0.5  # seconds every feed of the concurrency test takes to answer
NARROW_CONCURRENCY = 8  # the old default, for contrast
ANCHORS = ("stock", "digest-tokenizer")  # sumy's Tokenizer with offline Punkt data; digest's tokenizer
STARTUP_RUNS = 15


def environment() -> dict[str, str]:
    """The environment of every measured process: this checkout on the path, the clock pinned."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(PYTHONPATH=str(REPO), DIGEST_NOW=NOW)
    return env


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
            if line.startswith("Model name")
        ),
        "unknown",
    )
    memory = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": str(os.cpu_count()),
        "cpu model": model,
        "memory": f"{int(memory) / 1024 / 1024:.1f} GiB",
        "python": platform.python_version(),
        "commit": commit,
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def write_project(root: Path, sources: str, workers: str, fetch: str = "", max_articles: int = 50) -> Path:
    """A config with the given [[sources]] tables, an empty store and one daily digest on disk."""
    root.mkdir(parents=True, exist_ok=True)
    config = root / "digest.toml"
    config.write_text(
        textwrap.dedent(f"""
        [store]
        path = "state/digest.sqlite3"

        [summary]
        workers = {json.dumps(workers) if workers == "auto" else workers}
        {fetch}
        [[digests]]
        name = "daily"
        output_dir = "out"
        max_articles = {max_articles}
        """)
        + sources,
        encoding="utf-8",
    )
    return config


def files_source(folder: Path) -> str:
    return f'\n[[sources]]\nname = "bench"\ntype = "files"\npath = "{folder}"\n'


def feed_sources(urls: list[str]) -> str:
    return "".join(
        f'\n[[sources]]\nname = "feed{number:04d}"\ntype = "feed"\nurl = "{url}"\nfull_text = "never"\n'
        for number, url in enumerate(urls)
    )


FETCH_SECTION = "[fetch]\nallow_private = true\n"


def digest(config: Path, *args: str) -> Measured:
    """Measure `python -m digest --config CONFIG ARGS` in the config's folder."""
    return measure([sys.executable, "-m", "digest", "--config", str(config), *args], config.parent, environment())


def run_digest(config: Path, expected: int | None) -> Measured:
    """One `digest run --json`; stops the benchmark with the reason if it did not store `expected` articles."""
    result = digest(config, "run", "--json")
    report = json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}
    stored = sum(source["new_articles"] for source in report.get("sources", []))
    if result.returncode not in (0, 1) or (expected is not None and stored != expected):
        sys.exit(f"digest run failed (exit {result.returncode}, {stored} of {expected} stored):\n{result.stderr[-3000:]}")
    return result


def feeds_available(work: Path) -> bool:
    """True when this checkout can poll a `feed` source: a poll of a closed port fails as a
    fetch, not with an internal error (the config may know the type before a source does)."""
    config = write_project(work / "probe", feed_sources(["http://127.0.0.1:9/feed.xml"]), "1", FETCH_SECTION)
    result = digest(config, "run", "--json")
    try:
        error = json.loads(result.stdout)["sources"][0]["error"]
    except (ValueError, LookupError):
        return False
    return "internal error" not in error


def daemon_available() -> bool:
    """True when this checkout has the `daemon` command."""
    probe = subprocess.run([sys.executable, "-m", "digest", "daemon", "--help"], capture_output=True, env=environment())
    return probe.returncode == 0


def median(values: list[float]) -> float:
    return statistics.median(values)


def bench_size(
    work: Path, size: int, texts: list[str], runs: int, workers: str, anchor: bool, with_feeds: bool, with_files: bool = True
) -> dict[str, object]:
    """Median figures for one corpus size: files source, feeds (if available), the anchor."""
    folder = work / f"corpus-{size}"
    if not folder.exists():
        write_files(folder, size, texts)
    results: dict[str, list[Measured]] = {"files": [], "feeds": []}
    anchors: dict[str, list[Measured]] = {kind: [] for kind in ANCHORS}
    documents = feeds(size, PER_FEED, texts) if with_feeds else {}
    for run in range(runs):
        config = write_project(work / f"files-{size}-{run}", files_source(folder), workers)
        if with_files:
            results["files"].append(run_digest(config, size))
            print(f"  N={size} run {run + 1}: files {results['files'][-1].wall:.1f} s", file=sys.stderr, flush=True)
        if with_feeds:
            with ExitStack() as stack:
                urls = serve_each(documents, 0.0, stack)
                config = write_project(work / f"feeds-{size}-{run}", feed_sources(urls), workers, FETCH_SECTION)
                results["feeds"].append(run_digest(config, size))
                print(f"  N={size} run {run + 1}: feeds {results['feeds'][-1].wall:.1f} s", file=sys.stderr, flush=True)
        for kind in ANCHORS if anchor else ():
            measured = measure([sys.executable, str(REPO / "bench" / "anchor.py"), str(folder), kind], work, environment())
            if measured.returncode != 0:
                sys.exit(f"anchor failed:\n{measured.stderr[-3000:]}")
            anchors[kind].append(measured)
            print(
                f"  N={size} run {run + 1}: LexRank ({kind}) {json.loads(measured.stdout)['summarise_seconds']:.1f} s",
                file=sys.stderr,
                flush=True,
            )
    figures: dict[str, object] = {"size": size}
    for kind in ("files", "feeds"):
        if results[kind]:
            wall = median([m.wall for m in results[kind]])
            figures[kind] = {
                "wall": wall,
                "articles_per_second": size / wall,
                "ms_per_article": 1000 * wall / size,
                "cpu": median([m.cpu for m in results[kind]]),
                "max_process_mb": median([m.max_process_mb for m in results[kind]]),
                "tree_rss_mb": median([m.tree_rss_mb for m in results[kind]]),
                "tree_pss_mb": median([m.tree_pss_mb for m in results[kind]]),
                "walls": [round(m.wall, 2) for m in results[kind]],
            }
    for kind, measured in anchors.items():
        if measured:
            seconds = [json.loads(m.stdout)["summarise_seconds"] for m in measured]
            entry: dict[str, object] = {
                "summarise_seconds": median(seconds),
                "cpu": median([m.cpu for m in measured]),
                "ms_per_article": 1000 * median(seconds) / size,
                "runs": [round(s, 2) for s in seconds],
            }
            if "files" in figures:
                entry["speed_up"] = median(seconds) / figures["files"]["wall"]  # type: ignore[index]
            figures[f"lexrank {kind}"] = entry
    return figures


def bench_startup(config: Path) -> dict[str, dict[str, float]]:
    """Median wall and CPU time of `digest --help`, `digest status` and a bare `python -c pass`."""
    commands: dict[str, Callable[[], Measured]] = {
        "python -c pass (floor)": lambda: measure([sys.executable, "-c", "pass"], config.parent, environment()),
        "digest --help": lambda: digest(config, "--help"),
        "digest status": lambda: digest(config, "status"),
    }
    timings: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in commands}
    for _ in range(STARTUP_RUNS):  # interleaved, so a burst of load hits every command alike
        for name, command in commands.items():
            result = command()
            timings[name]["wall"].append(result.wall)
            timings[name]["cpu"].append(result.cpu)
    return {name: {"wall": median(t["wall"]), "cpu": median(t["cpu"])} for name, t in timings.items()}


def bench_concurrency(work: Path, texts: list[str], workers: str, runs: int) -> dict[str, float]:
    """500 feeds, each on its own loopback host and answering after SLOW_FEED_DELAY: a second poll
    of all of them (nothing new, so the time is fetching and parsing) against one of them, with
    the default `[fetch] concurrency` and with the old default of 8. Medians of `runs` polls."""
    documents = feeds(CONCURRENT_FEEDS, 1, texts)
    figures: dict[str, float] = {}
    with ExitStack() as stack:
        urls = serve_each(documents, SLOW_FEED_DELAY, stack)
        figures["single_fetch"] = median([timed_fetch(urls[0]) for _ in range(runs)])
        setups = (
            ("one_feed", urls[:1], ""),
            ("all_feeds", urls, ""),
            ("all_feeds_narrow", urls, f"concurrency = {NARROW_CONCURRENCY}\n"),
        )
        for label, chosen, fetch in setups:
            # Every article goes into the first run's edition, so the timed polls make none.
            config = write_project(
                work / f"concurrency-{label}", feed_sources(chosen), workers, FETCH_SECTION + fetch, len(chosen)
            )
            run_digest(config, len(chosen))
            figures[label] = median([run_digest(config, 0).wall for _ in range(runs)])
    for label in ("all_feeds", "all_feeds_narrow"):
        # The poll's time past the one-feed run's (start-up, one fetch) plus that one fetch.
        figures[f"{label}_ratio"] = (figures[label] - figures["one_feed"] + figures["single_fetch"]) / figures["single_fetch"]
    return figures


def timed_fetch(url: str) -> float:
    """Seconds to fetch `url` once with the standard library."""
    started = time.perf_counter()
    with urllib.request.urlopen(url) as response:
        response.read()
    return time.perf_counter() - started


def serve_each(documents: dict[str, bytes], delay: float, stack: ExitStack) -> list[str]:
    """Serve each document from a loopback host of its own (127.0.x.y), as feeds come from many
    sites: one host for all would make the fetcher's per-host manners space them a second apart."""
    urls = []
    for number, (path, body) in enumerate(documents.items()):
        host = f"127.0.{1 + number // 250}.{1 + number % 250}"
        urls.append(stack.enter_context(FeedServer({path: body}, delay, host)).url(path))
    return urls


def bench_daemon(work: Path, settle: float = 15.0, window: float = 30.0) -> dict[str, float]:
    """CPU seconds and memory of `digest daemon` idling between jobs (seeds source, a daily digest)."""
    config = write_project(work / "daemon", files_source(REPO / "seeds"), "auto")
    process = subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(config), "daemon"],
        cwd=config.parent,
        env={k: v for k, v in environment().items() if k != "DIGEST_NOW"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(settle)
        before = _tree_cpu(process.pid)
        time.sleep(window)
        after = _tree_cpu(process.pid)
        rss, pss = tree_memory(process.pid)
        return {
            "cpu_seconds": after - before,
            "window": window,
            "tree_rss_mb": rss / 1024,
            "tree_pss_mb": pss / 1024,
            "alive": float(process.poll() is None),
        }
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tree_cpu(pid: int) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for member in descendants(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def report(
    info: dict[str, str],
    origin: str,
    sizes: list[dict[str, object]],
    notes: list[str],
    startup: dict[str, dict[str, float]] | None,
    concurrency: dict[str, float] | None,
    daemon: dict[str, float] | None,
) -> str:
    """The figures as Markdown."""
    lines = ["Machine: " + "; ".join(f"{k} {v}" for k, v in info.items()), f"Corpus: {origin}", ""]
    lines += [
        "| N | source | wall s | articles/s | ms/article | CPU s | peak tree RSS MB | peak tree PSS MB | largest process MB |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for figures in sizes:
        for kind in ("files", "feeds"):
            if kind in figures:
                f = figures[kind]  # type: ignore[index]
                lines.append(
                    f"| {figures['size']:,} | {kind} | {f['wall']:.1f} | {f['articles_per_second']:.0f} | {f['ms_per_article']:.1f} | "
                    f"{f['cpu']:.1f} | {f['tree_rss_mb']:.0f} | {f['tree_pss_mb']:.0f} | {f['max_process_mb']:.0f} |"
                )
    anchored = [figures for figures in sizes if any(f"lexrank {kind}" in figures for kind in ANCHORS)]
    if anchored:
        lines += [
            "",
            "| N | digest run (files) s | LexRank, sumy's tokenizer: s | CPU s | speed-up | LexRank, digest's tokenizer: s | CPU s | speed-up |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for figures in anchored:
            cells = [f"{figures['size']:,}", f"{figures['files']['wall']:.1f}" if "files" in figures else "–"]  # type: ignore[index]
            for kind in ANCHORS:
                a = figures.get(f"lexrank {kind}")
                cells += (
                    [f"{a['summarise_seconds']:.1f}", f"{a['cpu']:.1f}", f"{a['speed_up']:.2f}x" if "speed_up" in a else "–"]
                    if a
                    else ["–"] * 3
                )  # type: ignore[index]
            lines.append("| " + " | ".join(cells) + " |")
    if len(sizes) > 1 and all("files" in figures for figures in sizes):
        first, last = sizes[0]["files"], sizes[-1]["files"]  # type: ignore[index]
        lines += [
            "",
            f"Time per article at N={sizes[-1]['size']:,} over N={sizes[0]['size']:,}: "
            f"{last['ms_per_article'] / first['ms_per_article']:.2f}x",
        ]
    if startup:
        lines += ["", "| command | median wall s | median CPU s |", "| --- | ---: | ---: |"]
        lines += [f"| `{name}` | {t['wall']:.3f} | {t['cpu']:.3f} |" for name, t in startup.items()]
    if concurrency:
        lines += [
            "",
            f"{CONCURRENT_FEEDS} feeds on {CONCURRENT_FEEDS} loopback hosts, each answering after {SLOW_FEED_DELAY} s "
            f"(one feed's fetch: {concurrency['single_fetch']:.2f} s). Second poll (nothing new), whole command: "
            f"one feed {concurrency['one_feed']:.2f} s; all, default `[fetch] concurrency`: {concurrency['all_feeds']:.2f} s "
            f"(past one feed's run: {concurrency['all_feeds_ratio']:.1f}x one feed's fetch); all, concurrency = {NARROW_CONCURRENCY}: "
            f"{concurrency['all_feeds_narrow']:.2f} s ({concurrency['all_feeds_narrow_ratio']:.1f}x)",
        ]
    if daemon:
        lines += [
            "",
            f"Idle daemon: {daemon['cpu_seconds']:.2f} CPU s over {daemon['window']:.0f} s; "
            f"tree RSS {daemon['tree_rss_mb']:.0f} MB, PSS {daemon['tree_pss_mb']:.0f} MB",
        ]
    lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="500,2000,10000", help="corpus sizes, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement; medians are reported")
    parser.add_argument("--anchor-sizes", help="sizes at which to run the LexRank anchor [default: every size]")
    parser.add_argument("--workers", default="auto", help="[summary] workers for the runs")
    parser.add_argument("--skip", default="", help="comma-separated: files, anchor, feeds, concurrency, startup, daemon")
    parser.add_argument("--work", type=Path, help="working folder [default: a temp folder, removed after]")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    options = parser.parse_args()
    sizes = [int(s) for s in options.sizes.split(",")]
    anchor_sizes = {int(s) for s in options.anchor_sizes.split(",")} if options.anchor_sizes else set(sizes)
    skip = set(filter(None, options.skip.split(",")))
    info = machine()
    texts, origin = source_texts()
    print(f"corpus: {origin}", file=sys.stderr)
    notes: list[str] = []
    with ExitStack() as stack:
        work = options.work or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="digest-bench-")))
        work.mkdir(parents=True, exist_ok=True)
        with_feeds = "feeds" not in skip and feeds_available(work)
        if not with_feeds:
            notes.append(
                "feeds: skipped" if "feeds" in skip else "feeds: this checkout has no `feed` source type yet; files source only"
            )
        figures = [
            bench_size(
                work,
                size,
                texts,
                options.runs,
                options.workers,
                size in anchor_sizes and "anchor" not in skip,
                with_feeds,
                "files" not in skip,
            )
            for size in sizes
        ]
        startup = None if "startup" in skip else bench_startup(work / f"files-{sizes[0]}-0" / "digest.toml")
        concurrency = (
            bench_concurrency(work, texts, options.workers, options.runs) if with_feeds and "concurrency" not in skip else None
        )
        if concurrency is None and "concurrency" not in skip:
            notes.append("500-feed concurrency: not measured (no `feed` source type yet)")
        daemon = None
        if "daemon" not in skip:
            if daemon_available():
                daemon = bench_daemon(work)
            else:
                notes.append("idle daemon: this checkout has no `daemon` command yet; not measured")
    info["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(report(info, origin, figures, notes, startup, concurrency, daemon))
    if options.json:
        options.json.write_text(
            json.dumps(
                {
                    "machine": info,
                    "corpus": origin,
                    "sizes": figures,
                    "startup": startup,
                    "concurrency": concurrency,
                    "daemon": daemon,
                    "notes": notes,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
