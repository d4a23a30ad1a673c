"""Peak memory of making, rendering and delivering one edition, by its size.

For each N: a first `digest run` stores N stories from a files source (and a warm-up
digest makes an edition of one of them); then the source's
folder is emptied and a second `digest run` makes one edition of all N with
`max_articles = N`, writes it as files (html, md, txt) and into the archive, and
mails it to an aiosmtpd sink on 127.0.0.1. The figure is the second run's main
process peak (ru_maxrss of the CLI; workers are not used: nothing is summarised).

Usage: python bench/bench_edition_memory.py [--sizes 500,5000] [--runs 3] [--no-archive]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import textwrap
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import measure  # noqa: E402
from run import environment, machine  # noqa: E402
from versus_rss2email import smtp_sink  # noqa: E402

SENTENCE = "The council of {place} met on {day} to talk about story {n}, its budget, its bridges and its schools."


def write_stories(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        body = " ".join(SENTENCE.format(place=f"Town{n}", day=f"day {k}", n=n) for k in range(8))
        (folder / f"{n:05d}.txt").write_text(
            f"Story {n}: the council, the harbour bridge and the trams\n\n{body}\n", encoding="utf-8"
        )


ARCHIVE = ['base_url = "https://news.example.org/daily/"']  # emptied by --no-archive


def config_text(count: int, port: int, warm_up: bool) -> str:
    """The config of the storing run (a warm-up digest of one story) or of the edition's run."""
    if warm_up:
        digest = 'name = "warmup"\nsources = ["bench"]\nmax_articles = 1\noutput_dir = "warm"\nformats = ["txt"]'
    else:
        digest = (
            f'name = "daily"\nsources = ["bench"]\nmax_articles = {count}\noutput_dir = "out"\n'
            + "\n".join(ARCHIVE)
            + '\nemail_to = ["reader@example.org"]'
        )
    return (
        textwrap.dedent(f"""
        [store]
        path = "state/digest.sqlite3"

        [summary]
        workers = "auto"

        [[sources]]
        name = "bench"
        type = "files"
        path = "stories"

        [smtp]
        host = "127.0.0.1"
        port = {port}
        from = "Digest <bench@example.org>"

        """)
        + "\n[[digests]]\n"
        + digest
        + "\n"
    )


def edition_peak(work: Path, count: int, port: int) -> tuple[float, float, float]:
    """(main process peak MB, wall s, CPU s) of the run that makes the N-story edition."""
    if work.exists():
        shutil.rmtree(work)
    write_stories(work / "stories", count)
    config = work / "digest.toml"
    config.write_text(config_text(count, port, True), encoding="utf-8")
    env = environment()
    stored = measure([sys.executable, "-m", "digest", "--config", str(config), "run", "--json"], work, env, timeout=1800)
    report = json.loads(stored.stdout)
    assert sum(s["new_articles"] for s in report["sources"]) == count, stored.stderr[-2000:]
    shutil.rmtree(work / "stories")
    (work / "stories").mkdir()
    config.write_text(config_text(count, port, False), encoding="utf-8")
    made = measure([sys.executable, "-m", "digest", "--config", str(config), "run", "--json"], work, env, timeout=1800)
    assert made.returncode == 0, made.stderr[-2000:]
    html = next((work / "out" / "daily").glob("**/*T*.html")).read_text(encoding="utf-8")
    assert html.count("Story ") >= count, "the edition's page does not hold every story"
    return made.max_process_mb, made.wall, made.cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="500,5000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-archive", action="store_true", help="archive = false: files and email only")
    options = parser.parse_args()
    if options.no_archive:
        ARCHIVE[:] = ["archive = false"]
    sizes = [int(size) for size in options.sizes.split(",")]
    figures: dict[int, list[tuple[float, float, float]]] = {size: [] for size in sizes}
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-edition-") as root:
        port, mailed = smtp_sink(stack)
        for _ in range(options.runs):
            for size in sizes:
                figures[size].append(edition_peak(Path(root) / str(size), size, port))
        assert mailed[0] == options.runs * len(sizes)
    print(json.dumps(machine()))
    print("| stories in the edition | main process peak MB | wall s | CPU s |")
    print("| ---: | ---: | ---: | ---: |")
    for size in sizes:
        runs = figures[size]
        print(
            f"| {size:,} | {statistics.median(r[0] for r in runs):.1f} | {statistics.median(r[1] for r in runs):.2f} |"
            f" {statistics.median(r[2] for r in runs):.2f} |"
        )


if __name__ == "__main__":
    main()
