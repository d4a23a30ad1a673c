"""What `digest worker`'s tick pays each second to know whether any subscriber is owed a mail.

    python bench/readers_tick.py [--subscribers 10000] [--zones 20] [--runs 200] [--postgres URL]

A fresh store (a SQLite file, or a new schema in the PostgreSQL database at URL) with S active
subscribers of one digest spread over Z time zones and 24 local times, half of them sent a mail
already. Times `store.reader_times()` plus `audience.due_digests()` (the tick's look, one query)
against the daemon's look (one `due_subscribers` query per (time zone, time) pair), each the
median of RUNS calls, wall clock.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from digest.audience import due_digests, latest_slot  # noqa: E402
from digest.config import StoreConfig  # noqa: E402
from digest.store import Store, open_store  # noqa: E402

ZONES = (
    "Pacific/Auckland",
    "Australia/Sydney",
    "Asia/Tokyo",
    "Asia/Shanghai",
    "Asia/Kolkata",
    "Asia/Dubai",
    "Europe/Moscow",
    "Europe/Athens",
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
    "Pacific/Pago_Pago",
)
NOW = datetime(2026, 11, 30, 3, 30, tzinfo=timezone.utc)


def fill(store: Store, subscribers: int, zones: int) -> None:
    """S readers over Z zones and 24 local times; every other one was sent yesterday's mail."""
    with store.transaction():
        for n in range(subscribers):
            zone, at = ZONES[n % zones], f"{n % 24:02d}:00"
            reader, _ = store.add_subscriber(
                "daily", f"r{n}@example.org", "", zone, at, [], [], "active", NOW - timedelta(days=3)
            )
            if n % 2:
                slot = latest_slot(at, zone, NOW - timedelta(days=1))
                store.create_subscriber_edition("daily", ["news"], [reader.id], reader.watermark, slot, 50, lambda t: True, slot)


def median_ms(call: object, runs: int) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        call()  # type: ignore[operator]
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10000)
    parser.add_argument("--zones", type=int, default=20)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--postgres", default="", help="a PostgreSQL database url: a new schema in it is used and dropped")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if arguments.postgres:
            import psycopg

            schema = f"bench_readers_{int(time.time())}"
            with psycopg.connect(arguments.postgres, autocommit=True) as admin:
                admin.execute(f"CREATE SCHEMA {schema}")
            where: StoreConfig | Path = StoreConfig(url=f"{arguments.postgres}?options=-csearch_path%3D{schema}")
        else:
            where = Path(folder) / "digest.sqlite3"
        store = open_store(where)
        try:
            fill(store, arguments.subscribers, arguments.zones)
            pairs = store.subscriber_times("daily")

            def tick_look() -> list[str]:
                return due_digests(store.reader_times(), NOW)

            def daemon_look() -> int:
                return sum(len(store.due_subscribers("daily", zone, at, latest_slot(at, zone, NOW))) for zone, at in pairs)

            assert tick_look() == (["daily"] if daemon_look() else [])
            tick = median_ms(tick_look, arguments.runs)
            daemon = median_ms(daemon_look, arguments.runs)
        finally:
            store.close()
            if arguments.postgres:
                from digest.store.postgres import close_pools

                close_pools()
                with psycopg.connect(arguments.postgres, autocommit=True) as admin:
                    admin.execute(f"DROP SCHEMA {schema} CASCADE")
    kind = "PostgreSQL" if arguments.postgres else "SQLite"
    print(
        f"{kind}: {arguments.subscribers} subscribers, {len(pairs)} (zone, time) pairs; median of {arguments.runs}: "
        f"tick's look (reader_times, one query) {tick:.2f} ms; daemon's look (due_subscribers per pair) {daemon:.2f} ms"
    )


if __name__ == "__main__":
    main()
