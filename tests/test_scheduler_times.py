"""Scheduled times, computed by the daemon's real triggers with an injected clock."""

from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from digest.config import Config, DigestConfig, FilesSourceConfig, Duration
from digest.jobs import History
from digest.scheduler import edition_trigger, next_edition, next_poll, plan

UTC = timezone.utc
LONDON = ZoneInfo("Europe/London")


def fire_times(digest: DigestConfig, start: datetime, count: int) -> list[datetime]:
    """The next `count` fire times, as the scheduler computes them one after another."""
    trigger = edition_trigger(digest, start)
    times: list[datetime] = []
    previous = None
    now = start
    for _ in range(count):
        moment = trigger.get_next_fire_time(previous, now)
        times.append(moment)
        previous = now = moment
    return times


def test_seven_in_london_fires_at_seven_local_across_both_summer_time_changes() -> None:
    digest = DigestConfig(name="daily", schedule="0 7 * * *", timezone="Europe/London")
    for start in (datetime(2026, 3, 26, 12, tzinfo=UTC), datetime(2026, 10, 22, 12, tzinfo=UTC)):
        times = fire_times(digest, start, 6)
        local = [t.astimezone(LONDON) for t in times]
        assert [(t.hour, t.minute) for t in local] == [(7, 0)] * 6
        days = [t.date() for t in local]
        assert days == [days[0] + timedelta(days=n) for n in range(6)]  # one a day: none skipped, none doubled
        offsets = {t.utcoffset() for t in local}
        assert offsets == {timedelta(0), timedelta(hours=1)}  # the change really falls inside the window


def test_time_in_the_repeated_hour_fires_once_when_summer_time_ends() -> None:
    digest = DigestConfig(name="night", schedule="30 1 * * *", timezone="Europe/London")
    times = fire_times(digest, datetime(2026, 10, 23, 12, tzinfo=UTC), 4)
    assert [t.astimezone(LONDON).date().day for t in times] == [24, 25, 26, 27]


def test_time_in_the_skipped_hour_still_fires_that_day_when_summer_time_starts() -> None:
    digest = DigestConfig(name="night", schedule="30 1 * * *", timezone="Europe/London")
    times = fire_times(digest, datetime(2026, 3, 27, 12, tzinfo=UTC), 4)
    assert [t.astimezone(LONDON).date().day for t in times] == [28, 29, 30, 31]


def test_weekdays_use_crontab_numbering_and_day_or_weekday() -> None:
    sunday = DigestConfig(name="weekly", schedule="0 9 * * 0", timezone="UTC")
    assert {t.strftime("%A") for t in fire_times(sunday, datetime(2026, 1, 1, tzinfo=UTC), 3)} == {"Sunday"}
    either = DigestConfig(name="either", schedule="0 9 13 * 5", timezone="UTC")  # the 13th, or any Friday
    days = [(t.day, t.strftime("%A")) for t in fire_times(either, datetime(2026, 2, 1, tzinfo=UTC), 5)]
    assert days == [(6, "Friday"), (13, "Friday"), (20, "Friday"), (27, "Friday"), (6, "Friday")]
    days = [(t.day, t.strftime("%a")) for t in fire_times(either, datetime(2026, 3, 7, tzinfo=UTC), 3)]
    assert days == [(13, "Fri"), (20, "Fri"), (27, "Fri")]
    days = [(t.day, t.strftime("%a")) for t in fire_times(either, datetime(2026, 4, 4, tzinfo=UTC), 3)]
    assert days == [(10, "Fri"), (13, "Mon"), (17, "Fri")]


def test_missed_daily_editions_coalesce_into_one_due_at_start() -> None:
    digest = DigestConfig(name="daily", schedule="0 7 * * *", timezone="UTC")
    now = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    assert next_edition(digest, now - timedelta(days=2), now) == now
    # once caught up, the next one is tomorrow's 07:00, not another catch-up
    assert next_edition(digest, now, now + timedelta(seconds=1)) == datetime(2026, 11, 28, 7, tzinfo=UTC)


def test_nothing_missed_waits_for_the_schedule() -> None:
    digest = DigestConfig(name="daily", schedule="0 7 * * *", timezone="Europe/London")
    now = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    made_today = datetime(2026, 7, 1, 6, 0, 5, tzinfo=UTC)  # 07:00:05 London
    assert next_edition(digest, made_today, now) == datetime(2026, 7, 2, 6, 0, tzinfo=UTC)
    assert next_edition(digest, None, now) == datetime(2026, 7, 2, 6, 0, tzinfo=UTC)


def test_interval_editions_count_from_the_last_one() -> None:
    digest = DigestConfig(name="often", schedule="every 6h")
    now = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    assert next_edition(digest, now - timedelta(hours=1), now) == now + timedelta(hours=5)
    assert next_edition(digest, now - timedelta(hours=13), now) == now
    assert next_edition(digest, None, now) == now + timedelta(hours=6)


def test_plan_polls_before_catch_up_editions(tmp_path: Path) -> None:
    source = FilesSourceConfig(name="seeds", path=tmp_path, interval=Duration(minutes=5))
    config = Config(
        path=tmp_path / "digest.toml",
        sources=(source,),
        digests=(DigestConfig(name="daily", schedule="0 7 * * *"),),
    )
    now = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    history = History(last_polls={"seeds": now - timedelta(minutes=1)}, last_editions={"daily": now - timedelta(days=2)})
    jobs = {job.id: job for job in plan(config, history, now)}
    assert jobs["poll:seeds"].first_run == now + timedelta(minutes=4)
    assert jobs["edition:daily"].first_run == now + timedelta(milliseconds=1)
    history = History(last_polls={}, last_editions={"daily": now - timedelta(days=2)})
    jobs = plan(config, history, now)
    assert [job.id for job in sorted(jobs, key=lambda j: j.first_run)][:2] == ["poll:seeds", "edition:daily"]


def test_poll_due_one_interval_after_the_last() -> None:
    source = FilesSourceConfig(name="seeds", path=Path("."), interval=Duration(minutes=30))
    now = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    assert next_poll(source, None, now) == now
    assert next_poll(source, now - timedelta(minutes=10), now) == now + timedelta(minutes=20)
    assert next_poll(source, now - timedelta(hours=10), now) == now


def test_polls_repeat_on_the_interval_with_a_little_jitter(tmp_path: Path) -> None:
    sources = tuple(FilesSourceConfig(name=f"s{n}", path=tmp_path, interval=Duration(minutes=10)) for n in range(20))
    config = Config(path=tmp_path / "digest.toml", sources=sources)
    now = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    polls = [job for job in plan(config, History({}, {}), now) if job.kind == "poll"]
    gaps = [job.trigger.get_next_fire_time(now, now) - now for job in polls]
    assert all(timedelta(minutes=10) <= gap <= timedelta(minutes=10, seconds=30) for gap in gaps)  # jitter: at most 30 s
    assert len(set(gaps)) > 1  # the sources do not all fire at the same instant


def test_a_servers_retry_after_holds_the_next_poll_back() -> None:
    source = FilesSourceConfig(name="seeds", path=Path("."), interval=Duration(minutes=30))
    now = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    later = now + timedelta(hours=2)
    assert next_poll(source, now - timedelta(hours=1), now, not_before=later) == later
    assert next_poll(source, now - timedelta(hours=1), now, not_before=now - timedelta(minutes=1)) == now
