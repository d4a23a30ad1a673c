"""One day's mail to many subscribers: the time to make and hand over every reader's edition, and the store's size.

    python bench/subscribers.py [--subscribers 10000] [--zones 20] [--articles 50] [--dkim] [--runs 1]

A fresh project: a folder of N articles, S subscribers of one digest spread over Z time
zones (each at 07:00 local, no words), a loopback aiosmtpd sink in its own process that
answers 250 to everything. The day is walked zone by zone as the daemon's subscribers job
would: at each zone's 07:00 the editions owed are made (one per group) and the outbox is
handed to the sink. Prints wall and CPU time of making and of handing over, the
renderings, the messages the sink took, and the store's size before and after the day.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from digest import config as config_module  # noqa: E402
from digest import pipeline  # noqa: E402
from digest.audience import latest_slot  # noqa: E402
from digest.render import Renderer  # noqa: E402
from digest.store import open_store  # noqa: E402

ZONES = (
    "Pacific/Auckland",
    "Australia/Sydney",
    "Asia/Tokyo",
    "Asia/Shanghai",
    "Asia/Kolkata",
    "Asia/Dubai",
    "Europe/Moscow",
    "Africa/Cairo",
    "Europe/Berlin",
    "Europe/London",
    "Atlantic/Azores",
    "America/Sao_Paulo",
    "America/Halifax",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "Asia/Jakarta",
)
DAY = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def sink(port: int, ready: multiprocessing.synchronize.Event, counter: multiprocessing.sharedctypes.Synchronized) -> None:
    """A loopback SMTP server that takes every message and keeps only a count."""
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            with counter.get_lock():
                counter.value += 1
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    try:
        asyncio.run(asyncio.sleep(10**6))
    finally:
        controller.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_project(root: Path, port: int, articles: int, dkim: bool) -> Path:
    (root / "news").mkdir()
    for number in range(articles):
        (root / "news" / f"{number:03d}.txt").write_text(
            f"Story {number} about the harbour works\n\nThe council said stage {number} of the works went well. "
            "Residents were told more news would follow. The mayor thanked everyone for their patience.\n",
            encoding="utf-8",
        )
    extra = ""
    if dkim:
        import subprocess

        subprocess.run(["openssl", "genrsa", "-out", str(root / "dkim.pem"), "2048"], check=True, capture_output=True)
        extra = 'dkim_key_file = "dkim.pem"\ndkim_selector = "bench"\n'
    config = root / "digest.toml"
    config.write_text(
        textwrap.dedent(f"""\
        [store]
        path = "state/digest.sqlite3"
        [summary]
        workers = 0
        [[sources]]
        name = "news"
        type = "files"
        path = "news"
        [[digests]]
        name = "daily"
        output_dir = "out"
        base_url = "https://news.example.org/daily"
        [smtp]
        host = "127.0.0.1"
        port = {port}
        from = "Daily <digest@example.org>"
        """)
        + extra,
        encoding="utf-8",
    )
    return config


def one_run(options: argparse.Namespace, port: int, counter: multiprocessing.sharedctypes.Synchronized) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        config = config_module.load(make_project(root, port, options.articles, options.dkim))
        zones = ZONES[: options.zones]
        store = open_store(config.store)
        subscribed = (
            DAY - timedelta(days=1) + timedelta(minutes=30)
        )  # after New York's 07:00: the walked day brings every reader's first mail
        with store.transaction():
            for number in range(options.subscribers):
                store.add_subscriber(
                    "daily", f"reader{number}@example.com", "", zones[number % len(zones)], "07:00", (), (), "active", subscribed
                )
        store.close()
        pipeline.run(config, subscribed + timedelta(minutes=1))  # the articles arrive (and the digest's own edition)
        slots = sorted({latest_slot("07:00", zone, DAY + timedelta(days=1)) for zone in zones})
        size_before = config.store.path.stat().st_size + _wal(config.store.path)
        renders = [0]
        original = Renderer.render_email

        def counted(self: Renderer, *args: object, **kwargs: object) -> object:
            renders[0] += 1
            return original(self, *args, **kwargs)

        Renderer.render_email = counted  # type: ignore[method-assign]
        counter.value = 0
        making = handing = 0.0
        cpu = time.process_time()
        started = time.perf_counter()
        store = open_store(config.store)
        try:
            for slot in slots:
                t0 = time.perf_counter()
                pipeline.make_subscriber_editions(config, store, config.digests[0], slot)
                t1 = time.perf_counter()
                pipeline.deliver(config, store, slot, honour_backoff=True)
                handing += time.perf_counter() - t1
                making += t1 - t0
        finally:
            store.close()
            Renderer.render_email = original  # type: ignore[method-assign]
        total, cpu = time.perf_counter() - started, time.process_time() - cpu
        store = open_store(config.store)
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[attr-defined]  # SQLite's own
        store.close()
        return {
            "total": total,
            "making": making,
            "handing": handing,
            "cpu": cpu,
            "renders": renders[0],
            "sent": counter.value,
            "slots": len(slots),
            "size_before": size_before,
            "size_after": config.store.path.stat().st_size + _wal(config.store.path),
        }


def _wal(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=10000)
    parser.add_argument("--zones", type=int, default=20, choices=range(1, len(ZONES) + 1))
    parser.add_argument("--articles", type=int, default=50)
    parser.add_argument("--dkim", action="store_true", help="sign every message (RSA 2048)")
    parser.add_argument("--runs", type=int, default=1)
    options = parser.parse_args()
    port = free_port()
    ready = multiprocessing.Event()
    counter = multiprocessing.Value("i", 0)
    server = multiprocessing.Process(target=sink, args=(port, ready, counter), daemon=True)
    server.start()
    ready.wait(10)
    try:
        results = [one_run(options, port, counter) for _ in range(options.runs)]
    finally:
        server.terminate()
    median = {key: statistics.median(r[key] for r in results) for key in results[0]}
    print(
        f"{options.subscribers} subscribers in {options.zones} time zones, {options.articles} articles, "
        f"DKIM {'on' if options.dkim else 'off'}; medians of {options.runs} run(s); {os.cpu_count()} CPUs"
    )
    print(
        f"one day's mail: {median['total']:.1f} s wall ({median['cpu']:.1f} s CPU in this process): "
        f"making editions {median['making']:.2f} s, handing over {median['handing']:.1f} s "
        f"({1000 * median['handing'] / max(1, median['sent']):.2f} ms a message)"
    )
    print(f"{median['slots']:.0f} moments, {median['renders']:.0f} renderings, {median['sent']:.0f} messages taken by the sink")
    print(
        f"store: {median['size_before'] / 1e6:.2f} MB before the day, {median['size_after'] / 1e6:.2f} MB after "
        f"({(median['size_after'] - median['size_before']) / max(1, median['sent']):.0f} bytes a message)"
    )


if __name__ == "__main__":
    main()
