"""The daemon: APScheduler 3 runs polls, editions and outbox retries from the config.

The only module that imports APScheduler. Nothing is pickled: the jobs come
from the config, and what already happened (last poll, last edition) from the
store, so a restart knows which scheduled edition it missed and makes it once.
Jobs run concurrently: polls on a pool as wide as [fetch] concurrency, editions,
outbox retries and pruning on a pool of their own, so a hanging or slow source
delays no other source and no edition; APScheduler runs each job once at a time
and coalesces a poll that comes due while the last one still runs. The main thread
only waits for signals: SIGTERM/SIGINT stop cleanly, SIGHUP reloads the config.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from digest import config as config_module
from digest.config import Config, DigestConfig, SourceConfig
from digest.errors import ConfigError, DigestError
from digest.jobs import History, PipelineWork, StopRequested, Work
from digest.lock import DaemonLock
from digest.schedule import Schedule, parse_schedule

if TYPE_CHECKING:
    from apscheduler.events import JobSubmissionEvent

    from digest.inbound import ListenerProcess

log = logging.getLogger("digest.daemon")

OUTBOX_EVERY = timedelta(seconds=30)
# Threads for editions, outbox retries and pruning: beside the polls, never behind them.
EDITION_THREADS = 4
PRUNE_EVERY = timedelta(hours=6)  # [store] keep is days long: a few passes a day keep the store bounded
SUBSCRIBERS_EVERY = timedelta(minutes=1)  # subscribers' times are HH:MM: a mail goes within a minute of its time
STOP_GRACE_SECONDS = 7.0  # SIGTERM to exit stays under the promised 10 s, with room for a loaded machine
MAX_JITTER = timedelta(seconds=30)
_WEEKDAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_TICK = timedelta(microseconds=1)


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(timezone.utc)


class CronScheduleTrigger(BaseTrigger):
    """A crontab(5) schedule in a time zone, as an APScheduler trigger.

    Differs from `CronTrigger.from_crontab` where crontab differs: 0 is Sunday,
    a restricted day-of-month and day-of-week fire on either, and a fixed-hour
    job fires once, not twice, when summer time ends and a wall-clock hour repeats.
    """

    def __init__(self, schedule: Schedule, zone: ZoneInfo) -> None:
        assert schedule.cron is not None
        minute, hour, day, month, weekday = schedule.cron
        if weekday != "*":
            weekday = ",".join(_WEEKDAY_NAMES[int(n)] for n in weekday.split(","))
        if schedule.day_or_weekday:
            fields = [dict(day=day), dict(day_of_week=weekday)]
        else:
            fields = [dict(day=day, day_of_week=weekday)]
        self.zone = zone
        self.fixed_hour = schedule.fixed_hour
        self.triggers = [CronTrigger(minute=minute, hour=hour, month=month, timezone=zone, **extra) for extra in fields]

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        """The first scheduled time at or after `now` (after `previous_fire_time` when given)."""
        # arithmetic in UTC: adding to a local time would drop the fold of a repeated hour
        start = now.astimezone(timezone.utc)
        if previous_fire_time is not None:
            start = previous_fire_time.astimezone(timezone.utc) + _TICK
        while True:
            candidates = [t.get_next_fire_time(None, start) for t in self.triggers]
            found = min((c for c in candidates if c is not None), default=None)
            if found is None or not (self.fixed_hour and found.astimezone(self.zone).fold):
                return found
            start = found.astimezone(timezone.utc) + _TICK  # the repeated hour after summer time: already fired in the first one

    def __str__(self) -> str:
        return f"cron in {self.zone.key}"


def edition_trigger(digest: DigestConfig, anchor: datetime) -> BaseTrigger:
    """The trigger for a digest's `schedule` in its `timezone`; intervals count from `anchor`."""
    schedule = parse_schedule(digest.schedule)
    zone = ZoneInfo(digest.timezone)
    if schedule.every is not None:
        return IntervalTrigger(seconds=schedule.every.total_seconds(), start_date=anchor, timezone=zone)
    return CronScheduleTrigger(schedule, zone)


def next_edition(digest: DigestConfig, last_edition: datetime | None, now: datetime) -> datetime:
    """When the next edition is due: `now` if a scheduled time passed since the last edition.

    Many missed times make one catch-up edition. With no edition yet nothing
    was missed: a cron schedule waits for its next time, an interval for one interval.
    """
    schedule = parse_schedule(digest.schedule)
    if schedule.every is not None:
        due = (last_edition or now) + schedule.every
        return max(due, now)
    trigger = edition_trigger(digest, now)
    if last_edition is not None:
        missed = trigger.get_next_fire_time(None, last_edition + _TICK)
        if missed is not None and missed <= now:
            return now
    upcoming: datetime | None = trigger.get_next_fire_time(None, now)
    assert upcoming is not None  # cron fields are checked at config load, so a time always comes
    return upcoming.astimezone(timezone.utc)


def poll_jitter(source: SourceConfig) -> timedelta:
    """Up to a tenth of the interval, at most 30 s, so sources do not all fire at once."""
    return min(source.interval / 10, MAX_JITTER)


def next_poll(source: SourceConfig, last_poll: datetime | None, now: datetime, not_before: datetime | None = None) -> datetime:
    """When a source is due: one interval after its last poll (now if never polled or overdue),
    but not before a server's Retry-After."""
    due = now if last_poll is None else max(last_poll + source.interval, now)
    return max(due, not_before) if not_before else due


@dataclass(frozen=True)
class PlannedJob:
    """One scheduler job: what it does, when it first runs and its trigger after that."""

    id: str
    kind: str  # poll | edition | outbox | prune
    name: str  # source or digest name; "" for the outbox
    first_run: datetime
    trigger: BaseTrigger


def plan(config: Config, history: History, now: datetime) -> list[PlannedJob]:
    """Every job the config asks for, timed from the store's history.

    Polls due at start come first, then catch-up editions, so that a catch-up
    edition holds what the start-up polls found.
    """
    jobs: list[PlannedJob] = []
    history = history.as_of(now)
    for source in config.sources:
        first = next_poll(source, history.last_polls.get(source.name), now, history.polls_not_before.get(source.name))
        trigger = IntervalTrigger(
            seconds=source.interval.total_seconds(),
            start_date=first,
            timezone=timezone.utc,
            jitter=poll_jitter(source).total_seconds(),
        )
        jobs.append(PlannedJob(f"poll:{source.name}", "poll", source.name, first, trigger))
    for digest in config.digests:
        first = next_edition(digest, history.last_editions.get(digest.name), now)
        if first == now:
            first = now + timedelta(milliseconds=1)  # after the start-up polls
        jobs.append(PlannedJob(f"edition:{digest.name}", "edition", digest.name, first, edition_trigger(digest, first)))
    for digest in config.digests:  # each subscriber's own time: due readers are looked for every minute
        first = now + timedelta(milliseconds=3)
        jobs.append(
            PlannedJob(
                f"subscribers:{digest.name}",
                "subscribers",
                digest.name,
                first,
                IntervalTrigger(seconds=SUBSCRIBERS_EVERY.total_seconds(), start_date=first, timezone=timezone.utc),
            )
        )
    outbox_first = now + timedelta(milliseconds=2)
    jobs.append(
        PlannedJob(
            "outbox",
            "outbox",
            "",
            outbox_first,
            IntervalTrigger(seconds=OUTBOX_EVERY.total_seconds(), start_date=outbox_first, timezone=timezone.utc),
        )
    )
    prune_first = now + timedelta(minutes=1)  # after start-up's polls and catch-up editions
    jobs.append(
        PlannedJob(
            "prune",
            "prune",
            "",
            prune_first,
            IntervalTrigger(seconds=PRUNE_EVERY.total_seconds(), start_date=prune_first, timezone=timezone.utc),
        )
    )
    return jobs


class Daemon:
    """Runs the jobs of one config on APScheduler until told to stop."""

    def __init__(self, config: Config, work: Work | None = None, clock: Callable[[], datetime] = utc_now) -> None:
        self.config = config
        self.stopping = threading.Event()
        self.work = work or PipelineWork(self.stopping)
        self.clock = clock
        self._idle = threading.Condition()  # notified whenever a job ends
        self._running = 0
        self._stop_requested = False
        self._reload_requested = False
        self.listener: ListenerProcess | None = None  # the newsletter listener's process, when there are mailbox sources
        # Imported here: `digest status` plans with the triggers alone, without the scheduler's machinery.
        from apscheduler.events import EVENT_JOB_MAX_INSTANCES
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        self.scheduler = BackgroundScheduler(
            executors={
                "default": ThreadPoolExecutor(max_workers=EDITION_THREADS),
                "polls": ThreadPoolExecutor(max_workers=config.fetch.concurrency),
            },
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=timezone.utc,
        )
        self.scheduler.add_listener(self._on_skipped, EVENT_JOB_MAX_INSTANCES)
        if not log.isEnabledFor(logging.DEBUG):  # APScheduler's own lines only with --log-level debug
            logging.getLogger("apscheduler").setLevel(logging.ERROR)

    def _on_skipped(self, event: JobSubmissionEvent) -> None:
        kind, _, name = event.job_id.partition(":")
        log.info(
            "%s %s skipped: the previous one is still queued or running",
            kind,
            name,
            extra={"job": kind, "target": name, "skipped": True},
        )

    def schedule(self, now: datetime) -> list[PlannedJob]:
        """Replace every job with those planned from the config and the store's history."""
        jobs = plan(self.config, self.work.history(self.config), now)
        self.scheduler.remove_all_jobs()
        for job in jobs:
            self.scheduler.add_job(
                self._run,
                job.trigger,
                args=(job.kind, job.name),
                id=job.id,
                name=job.id,
                next_run_time=job.first_run,
                executor="polls" if job.kind == "poll" else "default",
            )
        return jobs

    def _run(self, kind: str, name: str) -> None:
        """Run one job unless the daemon is stopping; a job's failure is logged, never fatal."""
        with self._idle:
            if self.stopping.is_set():
                return
            self._running += 1
        try:
            self._run_job(kind, name)
        finally:
            with self._idle:
                self._running -= 1
                self._idle.notify_all()

    def _run_job(self, kind: str, name: str) -> None:
        """Do one job now; its failure is logged, never raised."""
        config = self.config
        now = self.clock()
        try:
            if kind == "poll":
                self.work.poll(config, name, now)
            elif kind == "edition":
                self.work.edition(config, name, now)
            elif kind == "subscribers":
                self.work.subscribers(config, name, now)
            elif kind == "outbox":
                self.work.outbox(config, now)
            else:
                self.work.prune(config, now)
        except StopRequested:
            log.info(
                "%s %s stopped early: what it stored is kept, the rest comes next time",
                kind,
                name,
                extra={"job": kind, "target": name},
            )
        except DigestError as error:
            log.error("%s %s failed: %s", kind, name or "", error, extra={"job": kind, "target": name, "error": str(error)})
        except Exception as error:  # a bug in one job must not kill the daemon
            log.exception("%s %s crashed: %s", kind, name or "", error, extra={"job": kind, "target": name})

    def reload(self, path: Path) -> bool:
        """Load the config again; a bad one (templates included) is reported and the running one kept."""
        from digest.pipeline import check_templates

        try:
            new = config_module.load(path)
            check_templates(new)
        except ConfigError as error:
            log.error("config not reloaded, keeping the running one: %s", error, extra={"job": "reload"})
            return False
        if new.store.path != self.config.store.path:
            log.error(
                "config not reloaded: store.path changed (%s); restart the daemon to move stores",
                new.store.path,
                extra={"job": "reload"},
            )
            return False
        self.config = new
        self.schedule(self.clock())
        self._run_listener()
        log.info(
            "config reloaded from %s: %d sources, %d digests", path, len(new.sources), len(new.digests), extra={"job": "reload"}
        )
        return True

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self._stop_requested = True

    def _on_reload(self, signum: int, frame: FrameType | None) -> None:
        self._reload_requested = True

    def run(self) -> int:
        """Hold the store's lock and run until SIGTERM or SIGINT; return the exit code (0)."""
        lock = DaemonLock(self.config.store.path)
        lock.acquire()
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)
        now = self.clock()
        jobs = self.schedule(now)
        log.info(
            "daemon started, PID %d: %d sources, %d digests, store %s",
            os.getpid(),
            len(self.config.sources),
            len(self.config.digests),
            self.config.store.path,
            extra={"job": "start", "jobs": len(jobs)},
        )
        for job in jobs:
            if job.kind == "edition":
                catching_up = job.first_run - now < timedelta(seconds=1)
                when = "now, catching up on a scheduled time missed while stopped" if catching_up else job.first_run.isoformat()
                log.info("edition of %s next: %s", job.name, when, extra={"job": "plan", "target": job.name, "at": job.first_run})
        self.scheduler.start()
        self._run_listener()
        while not self._stop_requested:
            time.sleep(0.2)
            if self.listener is not None:
                self.listener.keep_running()
            if self._reload_requested:
                self._reload_requested = False
                self.reload(self.config.path)
        return self._stop(lock)

    def _run_listener(self) -> None:
        """Run the newsletter listener beside the jobs, in its own process, while the config has mailbox sources."""
        from digest.inbound import ListenerProcess

        if not ListenerProcess.wanted(self.config):
            if self.listener is not None:
                self.listener.stop()
                self.listener = None
            return
        if self.listener is None:
            self.listener = ListenerProcess(self.config, _log_arguments())
            self.listener.start()
        elif self.listener.config is not self.config:
            self.listener.reload(self.config)

    def _stop(self, lock: DaemonLock) -> int:
        """Take no new jobs, give the running ones a few seconds, then leave."""
        log.info("stopping: no new jobs; waiting for the running ones", extra={"job": "stop"})
        with self._idle:
            self.stopping.set()
        self.scheduler.shutdown(wait=False)
        if self.listener is not None:
            self.listener.stop()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        with self._idle:
            finished = self._idle.wait_for(lambda: self._running == 0, timeout=STOP_GRACE_SECONDS)
        finished = finished and self.work.wait_idle(max(0.0, deadline - time.monotonic()))
        if finished:
            self.work.close()
            lock.release()
            log.info("daemon stopped", extra={"job": "stop"})
            return 0
        try:
            self.work.hand_back(self.config)
        except DigestError as error:
            log.error("could not hand back the delivery leases: %s", error, extra={"job": "stop"})
        log.warning(
            "a job still ran after %.0f s; exiting anyway: its open transaction rolls back "
            "and an unconfirmed delivery is retried at the next start",
            STOP_GRACE_SECONDS,
            extra={"job": "stop"},
        )
        logging.shutdown()
        sys.stderr.flush()
        os._exit(0)


def _log_arguments() -> list[str]:
    """The daemon's --log-level and --log-format, for the listener process it starts."""
    root = logging.getLogger()
    arguments = ["--log-level", logging.getLevelName(root.getEffectiveLevel()).lower()]
    if any(type(handler.formatter).__name__ == "JsonLogFormatter" for handler in root.handlers):
        arguments += ["--log-format", "json"]
    return arguments


def upcoming(config: Config, history: History, now: datetime) -> dict[str, dict[str, datetime]]:
    """For `digest status`: next edition of each digest (in its time zone) and next poll of each source (no jitter)."""
    history = history.as_of(now)
    return {
        "digests": {
            d.name: next_edition(d, history.last_editions.get(d.name), now).astimezone(ZoneInfo(d.timezone))
            for d in config.digests
        },
        "sources": {
            s.name: next_poll(s, history.last_polls.get(s.name), now, history.polls_not_before.get(s.name))
            for s in config.sources
        },
    }
