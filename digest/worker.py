"""`digest worker`: the work of the daemon shared by any number of processes on one PostgreSQL store, as
procrastinate tasks (the queue lives in the same database as the state).

A periodic `tick` (deferred once per second by the database, however many workers run) looks at
what is due and defers it: a poll per due source (the store keeps when each source is next due and
claims the due ones in one indexed query, so a tick over 5,000 sources costs no more than over 5; the
claim, a queueing lock keeping one waiting and a lock keeping one running: never two polls of a source
at once; a poll stores new articles waiting for their summary and defers summary tasks, a batch
of articles each, that any worker takes), an edition per digest and slot (claimed in the
edition's own transaction on a unique (digest, slot) key: made once), the subscribers' editions of a
digest when a reader's local time has come (each reader's mail of a moment claimed on a unique
(reader, moment) key in the transaction that makes it: made once), and the outbox (each delivery
claimed under a lease, so each email is sent once; a dead worker's claim is taken over when its lease
ends). The tick also puts back jobs whose worker stopped sending heartbeats (SIGKILL, a lost machine).
There is no singleton scheduler to keep alive.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from contextlib import closing
from datetime import datetime, timedelta, timezone
from typing import Any

import procrastinate
from procrastinate import exceptions as procrastinate_errors

from digest.config import Config, DigestConfig, MailboxSourceConfig
from digest.errors import ConfigError, StoreError
from digest.fetch import Fetcher
from digest.manners import StoredManners
from digest.pending import OVERDUE, batches
from digest.schedule import parse_schedule
from digest.store import open_store

log = logging.getLogger("digest.worker")

HEARTBEAT = 2.0  # seconds between a worker's heartbeats
STALLED_AFTER = 10.0  # seconds without a heartbeat after which a worker's running jobs are put back
POLL_CLAIM = timedelta(minutes=10)  # a deferred poll is not deferred again until it is recorded or this passed
POLLS_PER_TICK = 500  # polls a tick defers at most (one insert, ~0.1 s); more due wait for the next tick
DEFER_BATCH = 500  # poll jobs deferred by one INSERT
# A worker takes the highest priority job first: the tick, then editions, readers' editions, received mail and
# the outbox, before any poll waiting, so thousands of polls queued (every source due at once at the first
# start) hold none of them back.
TICK_PRIORITY = 100
ON_TIME_PRIORITY = 50
# The tick looks whether a subscriber is owed a mail every this many seconds, not every second: the look
# reads every active reader's row (10,000 readers: 28 ms on SQLite, 56 ms on PostgreSQL on a loaded machine,
# BENCHMARKS.md), and a reader's mail 10 s after their minute is on time (the daemon looks once a minute).
READERS_EVERY = 10
# A summary task that failed (the store unreachable a moment) is tried again; one whose worker died is put back by the tick.
SUMMARY_RETRY = procrastinate.RetryStrategy(max_attempts=5, exponential_wait=2)
SWEEP_LIMIT = 500  # overdue articles deferred again per minute at most
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def slot_of(digest: DigestConfig, last_run: datetime | None, now: datetime) -> datetime | None:
    """The slot of `digest` due at `now`, the same in every worker, or None when none is due: for `every N`
    the last multiple of N since the epoch; for a cron schedule the first fire time missed since its last run."""
    from digest.scheduler import next_edition

    schedule = parse_schedule(digest.schedule)
    if schedule.every is not None:
        step = schedule.every.total_seconds()
        slot = _EPOCH + timedelta(seconds=(now - _EPOCH).total_seconds() // step * step)
        return slot if last_run is None or last_run < slot else None
    if next_edition(digest, last_run, now) > now:
        return None
    return now.replace(second=0, microsecond=0)


def make_app(config: Config, lease: timedelta = timedelta(minutes=10)) -> procrastinate.App:
    """The procrastinate app of `config`'s PostgreSQL store, with digest's tasks; a delivery is claimed for
    `lease` (longer than one attempt can take: a claim is taken over only once its lease ended)."""
    if not config.store.url:
        raise ConfigError(str(config.path), "store.url", "digest worker needs a PostgreSQL store: set [store] url")
    connection: dict[str, Any] = {"password": config.store.password} if config.store.password else {}
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=config.store.url, kwargs=connection, min_size=1, max_size=8)
    )

    mailboxes = [s.name for s in config.sources if isinstance(s, MailboxSourceConfig)]
    fetchers: list[Fetcher] = []
    fetcher_lock = threading.Lock()

    def fetcher() -> Fetcher:
        """This process's fetcher, made at its first poll: its connections are reused by the next polls, and
        its per-host manners are kept in the store, held with every other worker's."""
        with fetcher_lock:
            if not fetchers:
                shared = StoredManners(
                    lambda: open_store(config.store),
                    config.fetch.per_host_concurrency,
                    config.fetch.per_host_delay.total_seconds(),
                )
                fetchers.append(Fetcher(config.fetch, shared=shared))
            return fetchers[0]

    # below polls (0), editions, mail and the tick: a backlog of summaries never makes them late
    @app.task(name="digest.summarise", pass_context=True, retry=SUMMARY_RETRY, priority=-1)
    def summarise(context: procrastinate.JobContext, articles: list[int]) -> None:
        """Summarise a batch of articles a poll stored waiting for their summary (any worker takes it)."""
        from digest import pipeline

        job = context.job.id
        log.info("summary job %s: %d articles started (worker process %d)", job, len(articles), os.getpid())
        with closing(open_store(config.store)) as store:
            done = pipeline.summarise_stored(config, store, articles)
        log.info("summary job %s: %d summarised, %d were already", job, done.summarised, done.done_before)

    def defer_summaries(ids: list[int]) -> None:
        if ids:
            arguments: list[dict[str, Any]] = [{"articles": batch} for batch in batches(ids)]
            summarise.batch_defer(*arguments)

    @app.task(name="digest.poll", pass_context=False)
    def poll(source: str) -> None:
        """Poll one source and store what is new, waiting for its summary: summary tasks make them."""
        from digest import pipeline

        source_config = next((s for s in config.sources if s.name == source), None)
        if source_config is None:
            return
        now = datetime.now(timezone.utc)
        with closing(open_store(config.store)) as store:
            state = store.source_state(source)
            if (state.last_poll and state.last_poll + source_config.interval > now) or (
                state.not_before and state.not_before > now
            ):
                # a second job of a source polled since it was deferred (its claim's lease ended while the
                # job waited, or a dead worker's job put back): never two polls in one interval
                log.info("source %s: polled at %s already, not due: skipped", source, state.last_poll)
                return
            log.info("source %s: poll started (worker process %d)", source, os.getpid())
            [report] = pipeline.poll(config, store, [source_config], now, fetcher=fetcher(), summaries_later=True)
        defer_summaries(report.waiting_for_summary)  # after the poll committed them: a task finds them stored

    @app.periodic(cron="* * * * *", periodic_id="summary-sweep")
    @app.task(name="digest.summary_sweep", queueing_lock="digest.summary_sweep", pass_context=False)
    def summary_sweep(timestamp: int) -> None:
        """Once a minute: defer again the summaries of articles waiting longer than OVERDUE (a worker died
        between storing them and deferring their task; a task that died itself is put back by the tick)."""
        with closing(open_store(config.store)) as store:
            overdue = store.overdue_summaries(datetime.now(timezone.utc) - OVERDUE, SWEEP_LIMIT)
        if overdue:
            log.warning("%d articles waited over %s for their summary: deferred again", len(overdue), OVERDUE)
            defer_summaries(overdue)

    @app.task(name="digest.inbound", priority=ON_TIME_PRIORITY, pass_context=False)
    def inbound(source: str) -> None:
        """Turn the mail `digest inbound` stored for mailbox `source` since its last poll into articles (parse,
        extract, store; summary tasks summarise them, as after any poll): a poll of that source, under the same
        lock as its polls (never two at once)."""
        from digest import pipeline

        source_config = next((s for s in config.sources if s.name == source and isinstance(s, MailboxSourceConfig)), None)
        if source_config is None:
            return
        log.info("source %s: received mail taken in (worker process %d)", source, os.getpid())
        with closing(open_store(config.store)) as store:
            [report] = pipeline.poll(config, store, [source_config], datetime.now(timezone.utc), summaries_later=True)
        defer_summaries(report.waiting_for_summary)

    @app.task(name="digest.edition", priority=ON_TIME_PRIORITY, pass_context=False)
    def edition(digest: str, slot: str) -> None:
        """Make `digest`'s edition of `slot` once: the slot's claim, the edition, its outbox rows and the
        digest's last run commit together, or none of them."""
        from digest.editions import make_edition

        digest_config = config.digest(digest)
        moment = datetime.fromisoformat(slot)
        # once the store closes, its deliveries are due: the next tick defers the outbox
        with closing[Any](open_store(config.store)) as store:
            with store.transaction():
                if not store.claim_slot(digest, moment, datetime.now(timezone.utc)):
                    return
                made = make_edition(
                    store, digest_config, [s.name for s in config.sources_of(digest_config)], datetime.now(timezone.utc)
                )
                store.record_digest_run(digest, moment)
            if made is None:
                log.info("edition of %s: nothing new, none made", digest, extra={"job": "edition", "target": digest})

    @app.task(name="digest.readers", priority=ON_TIME_PRIORITY, pass_context=False)
    def readers(digest: str) -> None:
        """Make the editions owed now to `digest`'s subscribers, each at their own local time: one per group of
        readers who get the same articles, each reader's claimed on a unique (reader, moment) key in the
        transaction that makes it, so made once however many workers run; a worker killed midway loses only
        its uncommitted group, which the job's next run makes. Their deliveries wait in the outbox."""
        from digest import pipeline

        digest_config = next((d for d in config.digests if d.name == digest), None)
        if digest_config is None:
            return
        log.info("readers of %s: editions started (worker process %d)", digest, os.getpid())
        # once the store closes, their deliveries are due: the next tick defers the outbox
        with closing(open_store(config.store)) as store:
            pipeline.make_subscriber_editions(config, store, digest_config, datetime.now(timezone.utc))

    @app.task(name="digest.outbox", priority=ON_TIME_PRIORITY, pass_context=False)
    def outbox() -> None:
        """Try every due delivery this job can lease. Each run leases as an owner of its own: two outbox jobs
        running at once in one worker process (--concurrency) must not both hold, and send, one delivery."""
        from digest import pipeline

        with closing(open_store(config.store, owner=uuid.uuid4().hex)) as store:
            pipeline.deliver(config, store, datetime.now(timezone.utc), honour_backoff=True, lease=lease)

    def due(look_at_readers: bool) -> tuple[list[str], list[str], list[tuple[str, datetime]], list[str], bool]:
        """The sources due a poll (claimed here, so no other tick defers them again), the mailbox sources with
        mail received since their last poll, the digests due an edition (with its slot), the digests with a
        reader owed a mail (only when `look_at_readers`), and whether deliveries wait: a few queries however
        many sources and readers there are."""
        from digest.audience import due_digests

        now = datetime.now(timezone.utc)
        with closing[Any](open_store(config.store)) as store:
            polls = store.claim_due_polls(now, POLL_CLAIM, POLLS_PER_TICK)
            slots = [(d.name, store.last_digest_run(d.name)) for d in config.digests]
            reader_times = store.reader_times() if look_at_readers else []
            mail = store.mail_since_last_poll(mailboxes)
            outbox_due = bool(store.due_deliveries(now))
        editions = [(name, slot) for name, last in slots if (slot := slot_of(config.digest(name), last, now)) is not None]
        configured = {d.name for d in config.digests}
        readers_due = [name for name in due_digests(reader_times, now) if name in configured]
        return polls, mail, editions, readers_due, outbox_due

    async def defer(task: Any, queueing_lock: str, lock: str | None = None, **arguments: Any) -> None:
        try:
            await task.configure(queueing_lock=queueing_lock, lock=lock).defer_async(**arguments)
        except procrastinate_errors.AlreadyEnqueued:
            pass  # one is waiting already

    async def defer_polls(sources: list[str]) -> None:
        """One poll job per source, DEFER_BATCH to an INSERT (procrastinate's batch defer), so thousands due
        at once take the tick a fraction of a second; a batch that meets polls already queued (claims whose
        lease ended while their jobs still waited) is deferred one by one less those (one query finds them)."""
        for first in range(0, len(sources), DEFER_BATCH):
            batch = sources[first : first + DEFER_BATCH]
            jobs = [poll.configure(queueing_lock=f"poll:{s}", lock=f"poll:{s}").make_new_job(source=s) for s in batch]
            try:
                await app.job_manager.batch_defer_jobs_async(jobs)
            except procrastinate_errors.AlreadyEnqueued:
                queued = await app.connector.execute_query_all_async(
                    "SELECT queueing_lock FROM procrastinate_jobs WHERE status = 'todo' AND queueing_lock = ANY(%(locks)s)",
                    locks=[job.queueing_lock for job in jobs],
                )
                waiting = {row["queueing_lock"] for row in queued}
                for source in batch:
                    if f"poll:{source}" not in waiting:
                        await defer(poll, f"poll:{source}", f"poll:{source}", source=source)

    @app.periodic(cron="* * * * * *", periodic_id="tick")
    @app.task(name="digest.tick", queueing_lock="digest.tick", priority=TICK_PRIORITY, pass_context=False)
    async def tick(timestamp: int) -> None:
        """Once a second, across all workers: defer what is due, and put back the jobs of dead workers."""
        began = time.monotonic()
        for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_AFTER):
            try:
                await app.job_manager.retry_job(job)
                log.warning(
                    "job %s (%s %s) of a worker that stopped: put back in the queue", job.id, job.task_name, job.task_kwargs
                )
            except procrastinate_errors.UniqueViolation:
                # the same work (same lock) is queued or running again already: this copy is dropped
                await app.job_manager.finish_job(job, procrastinate.jobs.Status.ABORTED, delete_job=True)
                log.warning(
                    "job %s (%s %s) of a worker that stopped: dropped, the same work is queued again",
                    job.id,
                    job.task_name,
                    job.task_kwargs,
                )
        await app.job_manager.prune_stalled_workers(seconds_since_heartbeat=STALLED_AFTER)
        polls, mail, editions, readers_due, outbox_due = await asyncio.to_thread(due, timestamp % READERS_EVERY == 0)
        await defer_polls(polls)
        for source in mail:
            await defer(inbound, f"inbound:{source}", f"poll:{source}", source=source)
        if len(polls) >= DEFER_BATCH:
            # the queue grew by hundreds at once (every source due at the first start): PostgreSQL plans
            # procrastinate's job fetch on stale statistics until autovacuum catches up, and a fetch took 2 s
            # instead of 15 ms with 5,000 polls waiting (bench/workers.py scale); fresh statistics now
            await app.connector.execute_query_async("ANALYZE procrastinate_jobs")
        for digest, slot in editions:
            await defer(edition, f"edition:{digest}", f"edition:{digest}", digest=digest, slot=slot.isoformat())
        for digest in readers_due:
            await defer(readers, f"readers:{digest}", f"readers:{digest}", digest=digest)
        if outbox_due:
            await defer(outbox, "outbox")
        took = time.monotonic() - began
        if polls or took > 1.0:
            (log.warning if took > 1.0 else log.info)("tick: %d polls deferred, %.3f s", len(polls), took)

    return app


def migrate(config: Config, app: procrastinate.App) -> None:
    """Make the store's tables and procrastinate's schema, each once, however many workers start at once,
    and plan the config's sources' polls (their intervals: a changed interval counts from the next start)."""
    open_store(config.store).close()
    with closing[Any](open_store(config.store)) as store:
        if store.install_once("procrastinate_jobs", app.schema_manager.get_schema()):
            log.info("procrastinate's schema applied to %s", config.store.where)
        store.plan_polls({source.name: source.interval for source in config.sources})


def counting(config: Config) -> Any:
    """A procrastinate worker middleware counting each task this process finishes, done or failed."""
    host = socket.gethostname()

    def count(worker_id: int, ok: bool) -> None:
        with closing[Any](open_store(config.store)) as store:
            store.count_task(worker_id, host, os.getpid(), ok, datetime.now(timezone.utc))

    async def middleware(call_next: Any, context: Any, worker: Any) -> Any:
        try:
            result = await call_next()
        except BaseException:
            if worker.worker_id is not None:
                await asyncio.to_thread(count, worker.worker_id, False)
            raise
        if worker.worker_id is not None:
            await asyncio.to_thread(count, worker.worker_id, True)
        return result

    return middleware


def report(config: Config) -> dict[str, Any]:
    """For `digest status`: the workers, the queue's depths and the stalled tasks."""
    with closing[Any](open_store(config.store)) as store:
        return dict(store.worker_report(STALLED_AFTER))


def load_summariser(config: Config) -> None:
    """Load the summariser into this process (see pipeline.load_summariser) and log how long it took."""
    from digest import pipeline

    began = time.monotonic()
    pipeline.load_summariser(config)
    log.info("summariser loaded in %.1f s (worker process %d)", time.monotonic() - began, os.getpid())


def run(config: Config, concurrency: int, lease: timedelta) -> None:
    """Run one worker until SIGTERM or SIGINT: the running tasks finish (procrastinate's graceful shutdown)."""
    app = make_app(config, lease)
    try:
        migrate(config, app)
        # once per process, beside the first tasks (polls need none of it): a summary task that comes
        # first waits on the same imports instead of loading them again
        threading.Thread(target=load_summariser, args=(config,), name="load-summariser", daemon=True).start()
        app.run_worker(
            concurrency=concurrency,
            update_heartbeat_interval=HEARTBEAT,
            stalled_worker_timeout=STALLED_AFTER,
            delete_jobs="successful",
            install_signal_handlers=True,
            worker_middleware=[counting(config)],
        )
    except procrastinate_errors.ConnectorException as error:
        raise StoreError(f"store {config.store.where}: the task queue failed: {error}") from None
