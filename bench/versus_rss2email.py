"""digest against rss2email 3.14 on the same loopback feeds, side by side in one run.

Shapes: FEEDSxHOSTS, e.g. 200 feeds on 200 hosts, 200 feeds on one host, 1,000 on
1,000. Every feed answers after --latency seconds (0.2 by default), carries
--per-feed full-text entries and sends an ETag, so the second poll is the
conditional one a real reader makes. A "host" is a loopback address of its own
(127.0.x.y): addresses, not ports, so each host is a different machine as far as
either program can tell (digest keys its manners by scheme, name and port, so
ports would do for digest, but addresses are what many sites look like).

Each program polls twice (first poll: every entry new; second: nothing new) in a
fresh state folder. rss2email (installed by this script into its own venv under
bench/results/, which git ignores) mails each new entry over SMTP; digest stores,
summarises and mails one digest of at most 50 stories; both mail to one aiosmtpd
sink in this process. Measured: wall, CPU (user + system, the whole process
tree) and peak memory (largest process, ru_maxrss; and the tree's summed PSS).

Usage: python bench/versus_rss2email.py [--shapes 200x200,200x1,1000x1000] [--runs 1]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import textwrap
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import feeds, source_texts  # noqa: E402
from feedserver import FeedServer  # noqa: E402
from measure import Measured, measure  # noqa: E402
from run import NOW, environment, machine  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
R2E_VENV = RESULTS / "r2e-venv"
R2E_VERSION = "3.14"


def rss2email() -> Path:
    """The r2e command of a venv of its own, made (pip install rss2email) when absent."""
    r2e = R2E_VENV / "bin" / "r2e"
    if not r2e.exists():
        subprocess.run([sys.executable, "-m", "venv", str(R2E_VENV)], check=True)
        subprocess.run([str(R2E_VENV / "bin" / "pip"), "install", "-q", f"rss2email=={R2E_VERSION}"], check=True)
    return r2e


def serve(documents: dict[str, bytes], hosts: int, latency: float, stack: ExitStack) -> list[str]:
    """Serve the documents spread over `hosts` loopback addresses 127.0.x.y; their URLs in order."""
    servers = []
    paths = list(documents)
    for number in range(hosts):
        share = {path: documents[path] for path in paths[number::hosts]}
        address = f"127.0.{1 + number // 250}.{1 + number % 250}"
        servers.append(stack.enter_context(FeedServer(share, latency, address, etags=True)))
    return [servers[index % hosts].url(path) for index, path in enumerate(paths)]


def smtp_sink(stack: ExitStack) -> tuple[int, list[int]]:
    """An aiosmtpd server on 127.0.0.1 that counts and drops messages: its port and the count."""
    from aiosmtpd.controller import Controller

    count = [0]

    class Drop:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802 - aiosmtpd's name
            count[0] += 1
            return "250 OK"

    with socket.socket() as probe:  # a free port: aiosmtpd's Controller cannot be given port 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Drop(), hostname="127.0.0.1", port=port)
    controller.start()
    stack.callback(controller.stop)
    return port, count


def digest_project(folder: Path, urls: list[str], smtp_port: int) -> Path:
    folder.mkdir(parents=True)
    config = folder / "digest.toml"
    sources = "".join(
        f'\n[[sources]]\nname = "feed{n:04d}"\ntype = "feed"\nurl = "{url}"\nfull_text = "never"\n' for n, url in enumerate(urls)
    )
    config.write_text(
        textwrap.dedent(f"""
        [store]
        path = "state/digest.sqlite3"

        [fetch]
        allow_private = true

        [smtp]
        host = "127.0.0.1"
        port = {smtp_port}
        from = "Digest <bench@example.org>"

        [[digests]]
        name = "daily"
        max_articles = 50
        email_to = ["reader@example.org"]
        """)
        + sources,
        encoding="utf-8",
    )
    return config


def r2e_project(folder: Path, urls: list[str], smtp_port: int) -> Path:
    folder.mkdir(parents=True)
    config = folder / "rss2email.cfg"
    feeds_text = "".join(f"\n[feed.feed{n:04d}]\nurl = {url}\n" for n, url in enumerate(urls))
    config.write_text(
        textwrap.dedent(f"""
        [DEFAULT]
        from = bench@example.org
        to = reader@example.org
        email-protocol = smtp
        smtp-server = 127.0.0.1
        smtp-port = {smtp_port}
        smtp-ssl = False
        smtp-auth = False
        """)
        + feeds_text,
        encoding="utf-8",
    )
    return config


def poll_twice(shape: str, program: str, command: list[str], cwd: Path) -> list[Measured]:
    env = environment()
    results = []
    for _ in range(2):
        result = measure(command, cwd, env, timeout=1800)
        if result.returncode not in (0, 1):
            sys.exit(f"{program} on {shape} exited {result.returncode}:\n{result.stderr[-3000:]}")
        results.append(result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default="200x200,200x1,1000x1000", help="FEEDSxHOSTS, comma-separated")
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--per-feed", type=int, default=5)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--programs", default="digest,rss2email")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    options = parser.parse_args()
    r2e = rss2email() if "rss2email" in options.programs else None
    texts, origin = source_texts()
    info = machine()
    rows: list[dict[str, object]] = []
    work = RESULTS / "versus"
    subprocess.run(["rm", "-rf", str(work)], check=True)
    for shape in options.shapes.split(","):
        feed_count, hosts = (int(part) for part in shape.split("x"))
        documents = feeds(feed_count * options.per_feed, options.per_feed, texts)
        with ExitStack() as stack:
            urls = serve(documents, hosts, options.latency, stack)
            port, mailed = smtp_sink(stack)
            for run in range(options.runs):
                for program in options.programs.split(","):
                    folder = work / f"{shape}-{program}-{run}"
                    before = mailed[0]
                    if program == "digest":
                        config = digest_project(folder, urls, port)
                        polls = poll_twice(
                            shape, program, [sys.executable, "-m", "digest", "--config", str(config), "run"], folder
                        )
                    else:
                        assert r2e is not None
                        config = r2e_project(folder, urls, port)
                        polls = poll_twice(
                            shape, program, [str(r2e), "-c", str(config), "-d", str(folder / "data.json"), "run"], folder
                        )
                    rows.append(
                        {
                            "shape": shape,
                            "feeds": feed_count,
                            "hosts": hosts,
                            "program": program,
                            "run": run,
                            "mails": mailed[0] - before,
                            "polls": [
                                {"wall": p.wall, "cpu": p.cpu, "max_process_mb": p.max_process_mb, "tree_pss_mb": p.tree_pss_mb}
                                for p in polls
                            ],
                        }
                    )
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(report(info, origin, options, rows))
    if options.json:
        options.json.write_text(json.dumps({"machine": info, "rows": rows}, indent=1), encoding="utf-8")


def report(info: dict[str, str], origin: str, options: argparse.Namespace, rows: list[dict[str, object]]) -> str:
    lines = [
        f"machine: {json.dumps(info)}",
        f"corpus: {origin}; {options.per_feed} entries a feed, latency {options.latency} s,"
        f" DIGEST_NOW {NOW}; medians of {options.runs} run(s)",
        "",
        "| feeds on hosts | program | 1st poll wall s | CPU s | largest process MB | tree PSS MB | 2nd poll wall s | CPU s | mails |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    keys = sorted(
        {(str(r["shape"]), str(r["program"])) for r in rows}, key=lambda k: (options.shapes.split(",").index(k[0]), k[1])
    )
    for shape, program in keys:
        mine = [r for r in rows if r["shape"] == shape and r["program"] == program]

        def med(poll: int, field: str) -> float:
            return statistics.median(float(r["polls"][poll][field]) for r in mine)  # type: ignore[index]

        feeds_, hosts = shape.split("x")
        lines.append(
            f"| {feeds_} on {hosts} | {program} | {med(0, 'wall'):.1f} | {med(0, 'cpu'):.1f} | {med(0, 'max_process_mb'):.0f} |"
            f" {med(0, 'tree_pss_mb'):.0f} | {med(1, 'wall'):.1f} | {med(1, 'cpu'):.1f} | {mine[0]['mails']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
