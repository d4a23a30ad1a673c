"""Each subscriber's own edition over a simulated week and a half that crosses both the European and the
American end of summer time, driven through the daemon's own jobs with an injected clock, delivered to a
real aiosmtpd server, DKIM-signed and verified."""

from __future__ import annotations

import re
import textwrap
import threading
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import dkim
import pytest

from digest import config as config_module
from digest.jobs import PipelineWork
from digest.scheduler import Daemon, plan
from digest.jobs import History
from tests.inprocess import run_in_process
from tests.smtpserver import Received, smtp_server
from tests.test_dkim import published_record, write_key

START = datetime(2026, 10, 23, 0, 0, tzinfo=timezone.utc)  # Friday; London leaves BST on the 25th, New York EDT on 1 November
END = datetime(2026, 11, 3, 0, 0, tzinfo=timezone.utc)
# The daemon looks for due readers every minute; every half hour is enough here, all readers' times being whole hours
# (a mail at the wrong time would show at the wrong half hour), and each look is a job run against the store.
STEP = timedelta(minutes=30)
READERS = {
    "london@example.org": ("Europe/London", "07:00", ()),
    "tokyo@example.jp": ("Asia/Tokyo", "07:00", ()),
    "newyork@example.com": ("America/New_York", "18:00", ("--exclude", "football")),
}


def write_project(root: Path, port: int) -> Path:
    key_file, _ = write_key(root)
    (root / "news").mkdir()
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
        schedule = "0 7 * * *"
        output_dir = "out"
        base_url = "https://news.example.org/daily"

        [smtp]
        host = "127.0.0.1"
        port = {port}
        from = "Daily <digest@example.org>"
        timeout = "5s"
        dkim_key_file = "{key_file.name}"
        dkim_selector = "week"
        """),
        encoding="utf-8",
    )
    return config


def story(number: int, football: bool) -> str:
    topic = "Football: City beat United in the derby" if football else f"Harbour works reach stage {number}"
    return (
        f"Story {number:03d} {topic}\n\nThe council said the work went well on day {number}. Residents were "
        f"told more news would follow. The mayor thanked everyone for their patience.\n"
    )


def stories_in(received: Received) -> list[int]:
    text = received.message.get_body(("plain",)).get_content()
    return sorted({int(n) for n in re.findall(r"Story (\d{3})", text)})  # a story's title is in the headlines too


@pytest.mark.long
def test_three_readers_get_one_mail_per_local_day_at_their_time_with_every_matching_story_once(tmp_path: Path) -> None:
    with smtp_server() as server:
        config_file = write_project(tmp_path, server.port)
        for address, (zone, at, extra) in READERS.items():
            added = run_in_process(
                "--config",
                str(config_file),
                "subscribers",
                "add",
                address,
                "--timezone",
                zone,
                "--at",
                at,
                *extra,
                cwd=tmp_path,
                now=(START - timedelta(hours=1)).isoformat(),
            )
            assert added.returncode == 0, added.stderr
        check = run_in_process("--config", str(config_file), "check", "--smtp", cwd=tmp_path)
        name, record = published_record(check.stdout)

        config = config_module.load(config_file)
        clock = [START]
        daemon = Daemon(config, PipelineWork(threading.Event()), clock=lambda: clock[0])
        assert {(job.kind, job.name) for job in plan(config, History({}, {}), START)} >= {("subscribers", "daily")}
        stored_at: dict[int, datetime] = {}
        football = set()
        number = 0
        while clock[0] < END:
            now = clock[0]
            if now.minute == 0 and now.hour % 5 == 2:  # a story every five hours, at odd times of the readers' days
                number += 1
                is_football = number % 7 == 3
                if is_football:
                    football.add(number)
                (tmp_path / "news" / f"{number:03d}.txt").write_text(story(number, is_football), encoding="utf-8")
                daemon._run("poll", "news")
                stored_at[number] = now
            daemon._run("subscribers", "daily")
            clock[0] = now + STEP
    assert football and len(stored_at) > 40

    by_reader: dict[str, list[Received]] = defaultdict(list)
    for received in server.accepted:
        by_reader[received.rcpt_tos[0]].append(received)
    assert set(by_reader) == set(READERS)
    for address, (zone_name, at, extra) in READERS.items():
        zone = ZoneInfo(zone_name)
        mails = by_reader[address]
        sent = [datetime.strptime(str(m.message["Date"]), "%a, %d %b %Y %H:%M:%S %z") for m in mails]
        local = [moment.astimezone(zone) for moment in sent]
        # exactly one mail per local day, each at the reader's local time, across the clock change
        assert all(moment.strftime("%H:%M") == at for moment in local), (address, local)
        days = [moment.date() for moment in local]
        assert len(days) == len(set(days)), address
        first, last = days[0], days[-1]
        assert days == [first + timedelta(days=i) for i in range((last - first).days + 1)], address
        assert len(days) >= 10
        # every story stored before a mail is in the first mail after it, once; football never for the excluder
        got = [stories_in(m) for m in mails]
        flat = [n for numbers in got for n in numbers]
        assert len(flat) == len(set(flat)), address
        for numbers, moment in zip(got, sent):
            previous = max((s for s in sent if s < moment), default=START - timedelta(days=1))
            expected = {n for n, when in stored_at.items() if previous < when <= moment}
            if extra:
                expected -= football
            assert set(numbers) == expected, (address, moment)
        if extra:
            assert not set(flat) & football
        else:
            assert football <= set(flat)
        for mail in mails:
            message = mail.message
            header = str(message["List-Unsubscribe"]).strip()  # a long value is folded onto its own line
            assert re.fullmatch(r"<https://news\.example\.org/daily/unsubscribe/\d+\.[\w-]{22}>", header)
            assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            url = header.strip("<>")
            assert f"Unsubscribe: {url}" in message.get_body(("plain",)).get_content()
            assert f'href="{url}"' in message.get_body(("html",)).get_content()
            assert dkim.verify(mail.content, dnsfunc=lambda query, timeout=5: record)
    assert len({str(m.message["List-Unsubscribe"]) for m in server.accepted}) == 3  # one link per reader
