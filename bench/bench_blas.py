"""One BLAS thread against numpy's default (one per core): `digest summarize --jsonl` over the
500 dev articles and `digest run` over 1,000 articles in a files source (a worker process
summarises), alternating the two settings. Usage: python bench/bench_blas.py [--runs 3]"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus  # noqa: E402
from corpus import source_texts, write_files  # noqa: E402
from measure import measure  # noqa: E402
from run import environment, files_source, machine, write_project  # noqa: E402

BEFORE = {"OPENBLAS_NUM_THREADS": str(os.cpu_count() or 1)}  # what numpy picks by itself: one thread per core


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument(
        "--corpus", type=Path, default=corpus.CNNDM, help="the CNN stories (default ../shared/data/cnndm-dev.jsonl)"
    )
    options = parser.parse_args()
    corpus.CNNDM = options.corpus
    texts, origin = source_texts()
    with tempfile.TemporaryDirectory(prefix="bench-blas-") as work_name:
        work = Path(work_name)
        jsonl = work / "articles.jsonl"
        jsonl.write_text(
            "".join(json.dumps({"id": str(n), "text": text}) + "\n" for n, text in enumerate(texts[:500])), encoding="utf-8"
        )
        folder = work / "stories"
        write_files(folder, options.articles, texts)
        results: dict[str, dict[str, list[tuple[float, float]]]] = {}
        for run in range(options.runs):
            for label, extra in (("default (one per core)", BEFORE), ("one BLAS thread", {})):
                env = {k: v for k, v in environment().items() if not k.endswith("_NUM_THREADS")} | extra
                summarize = measure([sys.executable, "-m", "digest", "summarize", "--jsonl", str(jsonl)], work, env)
                project = write_project(work / f"run-{run}-{len(extra)}", files_source(folder), "auto")
                whole = measure([sys.executable, "-m", "digest", "--config", str(project), "run", "--json"], project.parent, env)
                assert summarize.returncode == 0 and whole.returncode in (0, 1), (summarize.stderr, whole.stderr)
                results.setdefault(label, {}).setdefault("summarize", []).append((summarize.wall, summarize.cpu))
                results[label].setdefault("run", []).append((whole.wall, whole.cpu))
    print(json.dumps(machine()), f"corpus: {origin}", sep="\n")
    print(f"| BLAS threads | summarize --jsonl 500: wall s | CPU s | run, {options.articles} files: wall s | CPU s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, by_command in results.items():
        cells = []
        for command in ("summarize", "run"):
            cells += [
                f"{statistics.median(w for w, _ in by_command[command]):.2f}",
                f"{statistics.median(c for _, c in by_command[command]):.2f}",
            ]
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
