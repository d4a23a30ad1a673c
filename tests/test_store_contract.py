"""The store contract (digest/store/base.py): what every implementation must do, whatever holds the state.

Each test gets `connect`, which opens a new connection to one fresh store as a given
lease owner (one per process or machine in real use). The SQLite implementation runs
here; another implementation (PostgreSQL) only adds a parameter to the `connect`
fixture. Implementation details (files, migrations' records, locking) are tested
beside each implementation (tests/test_store.py for SQLite), never here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from digest.errors import StoreError
from digest.models import Article, Summary
from digest.store import SqliteStore, Store

NOW = datetime(2026, 11, 27, 7, tzinfo=timezone.utc)
SUMMARY = Summary(("One sentence.", "Another one."), "lead", "english")
LEASE = timedelta(minutes=10)

Connect = Callable[..., Store]  # connect(owner="...") -> a new connection to the test's store


@pytest.fixture(params=["sqlite", "postgres"])
def connect(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Connect]:
    """New connections to one fresh store of each implementation, all closed after the test."""
    opened: list[Store] = []
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else ""

    def kept(store: Store) -> Store:
        if threading.current_thread() is threading.main_thread():  # a thread closes the connections it opens
            opened.append(store)
        return store

    def sqlite(owner: str = "first") -> Store:
        return kept(SqliteStore(tmp_path / "digest.sqlite3", owner=owner))

    def postgres(owner: str = "first") -> Store:
        from digest.store.postgres import PostgresStore

        return kept(PostgresStore(url, owner=owner))

    yield {"sqlite": sqlite, "postgres": postgres}[request.param]
    for store in opened:
        store.close()


@pytest.fixture
def store(connect: Connect) -> Store:
    return connect()


def article(
    identity: str,
    body: str | None = None,
    *,
    source: str = "news",
    version: str = "1",
    published: datetime | None = None,
    backfilled: bool = False,
    title: str | None = None,
) -> Article:
    return Article(
        source=source,
        identity=identity,
        title=title or f"Title {identity}",
        body=body or f"Body of {identity}.",
        published=published or NOW,
        version=version,
        backfilled=backfilled,
        url=f"https://example.org/{identity}",
    )


def add(store: Store, *articles: Article, now: datetime = NOW) -> list[int | None]:
    with store.transaction():
        return [store.add_article(a, SUMMARY, now) for a in articles]


# Articles


def test_an_article_is_stored_once_by_identity_and_version(store: Store) -> None:
    first = article("a")
    assert add(store, first)[0] is not None
    assert store.is_known(first)
    assert add(store, first) == [None]
    assert not store.is_known(article("a", "An updated story with new facts.", version="2"))
    assert add(store, article("a", "An updated story with new facts.", version="2"))[0] is not None
    assert store.article_count() == 2


def test_a_true_copy_is_known_but_shared_text_elsewhere_is_not(store: Store) -> None:
    add(store, article("a", "The same story, told once."))
    copy = article("b", "the same  STORY told once", title="Title a")
    assert store.is_known(Article(**{**vars(copy), "url": "https://example.org/a"}))  # same source, title, link, text
    assert not store.is_known(article("c", "The same story, told once."))  # another entry that shares the text
    assert not store.is_known(article("a", "The same story, told once.", source="other"))  # another source


# Editions


def test_story_features_are_kept_with_the_article_and_earlier_editions_are_listed_for_follow_ups(store: Store) -> None:
    with store.transaction():
        store.add_article(article("a"), SUMMARY, NOW, '{"v":1,"t":{"quake":1.0},"n":{},"w":3,"h":"x"}')
        store.add_article(article("b", published=NOW + timedelta(days=1)), SUMMARY, NOW)
    first = store.create_edition("daily", ["news"], 1, NOW, [])
    second = store.create_edition("daily", ["news"], 1, NOW + timedelta(days=1), [])
    assert first is not None and second is not None
    assert store.story_features([a.id for a in first.articles]) == [""]  # b, the newest, stored without features
    assert store.story_features([a.id for a in second.articles]) == ['{"v":1,"t":{"quake":1.0},"n":{},"w":3,"h":"x"}']
    shown = store.shown_before("daily", second.created, second.created - timedelta(hours=72))
    assert [(a.title, when) for a, when in shown] == [("Title b", NOW)]  # the newest article went first
    assert store.shown_before("daily", second.created, second.created - timedelta(hours=1)) == []
    assert store.shown_before("weekly", second.created, NOW - timedelta(days=9)) == []


def test_story_features_are_read_for_the_articles_asked_in_the_order_asked(store: Store) -> None:
    """Grouping pages through an edition's articles by id and pairs each with the features read back."""
    with store.transaction():
        ids = [
            store.add_article(article(f"a{n}"), SUMMARY, NOW, f'{{"v":1,"t":{{"t{n}":1.0}},"n":{{}},"w":{n},"h":"{n}"}}')
            for n in range(3)
        ]
        [plain] = [store.add_article(article("plain"), SUMMARY, NOW)]
    assert None not in ids and plain is not None
    expected = [f'{{"v":1,"t":{{"t{n}":1.0}},"n":{{}},"w":{n},"h":"{n}"}}' for n in range(3)]
    assert store.story_features([ids[2], plain, 999_999, ids[0], ids[2]]) == [expected[2], "", "", expected[0], expected[2]]
    assert store.story_features([]) == []


def test_every_article_is_in_exactly_one_edition_of_each_digest_newest_first(store: Store) -> None:
    add(store, *(article(f"a{n}", published=NOW - timedelta(hours=n)) for n in range(5)))
    first = store.create_edition("daily", ["news"], 3, NOW, [])
    assert first is not None and first.id is not None
    assert [a.title for a in first.articles] == ["Title a0", "Title a1", "Title a2"]
    assert first.waiting == 2
    second = store.create_edition("daily", ["news"], 3, NOW + timedelta(days=1), [])
    assert second is not None and [a.title for a in second.articles] == ["Title a3", "Title a4"]
    assert store.create_edition("daily", ["news"], 3, NOW + timedelta(days=2), []) is None
    other = store.create_edition("weekly", ["news"], 50, NOW, [])
    assert other is not None and len(other.articles) == 5
    assert store.edition_count("daily") == 2 and store.last_edition("daily") == NOW + timedelta(days=1)
    assert [a.title for a in store.edition(first.id).articles] == ["Title a0", "Title a1", "Title a2"]
    assert store.edition(first.id).articles[0].summary == SUMMARY.sentences


def test_an_edition_is_read_a_page_at_a_time_in_edition_order(store: Store) -> None:
    """Grouping reads a large edition's articles a page at a time before it loads them whole."""
    add(store, *(article(f"a{n}", published=NOW - timedelta(hours=n)) for n in range(5)))
    made = store.create_edition("daily", ["news"], 50, NOW, [])
    assert made is not None and made.id is not None
    pages = [[a.title for a in store.edition(made.id, start, 2).articles] for start in (0, 2, 4, 6)]
    assert pages == [["Title a0", "Title a1"], ["Title a2", "Title a3"], ["Title a4"], []]
    header = store.edition(made.id, count=0)
    assert (header.digest, header.created, header.atom_id, header.articles) == ("daily", NOW, made.atom_id, ())
    assert [a.title for a in store.edition(made.id, 3).articles] == ["Title a3", "Title a4"]  # from position 3 to the end


def test_backfilled_articles_and_other_sources_go_into_no_edition(store: Store) -> None:
    add(store, article("old", backfilled=True), article("elsewhere", source="other"))
    assert store.create_edition("daily", ["news"], 50, NOW, [("files", "/out")]) is None
    assert store.due_deliveries(None) == []
    assert store.unsent("daily", ["news"], 50) == ([], 0)


def test_an_article_waiting_for_its_summary_is_known_but_in_no_edition_until_summarised(connect: Connect) -> None:
    store = connect()
    with store.transaction():
        waiting = [store.add_article(article(f"w{n}", published=NOW - timedelta(hours=n)), None, NOW) for n in range(3)]
    [done] = add(store, article("done", published=NOW - timedelta(hours=5)))
    assert None not in waiting and done is not None
    assert store.is_known(article("w0"))  # a second poll does not store it again
    unsent, more = store.unsent("daily", ["news"], 50)
    assert [a.title for a in unsent] == ["Title done"] and more == 0  # the waiting ones are not counted as waiting either
    first = store.create_edition("daily", ["news"], 50, NOW, [])
    assert first is not None and [a.title for a in first.articles] == ["Title done"]  # only the summarised one
    [(first_id, text)] = store.awaiting_summary([waiting[0], done])
    assert first_id == waiting[0] and (text.identity, text.body, text.title) == ("w0", "Body of w0.", "Title w0")
    assert sorted(store.awaiting_summary([*waiting, 999])) == sorted(store.awaiting_summary(waiting))
    assert store.overdue_summaries(NOW + timedelta(seconds=1), 2) == waiting[:2]  # oldest first, up to the limit
    assert store.overdue_summaries(NOW, 10) == []  # none stored before then
    assert store.prune(NOW + timedelta(days=1)) == 1  # the summarised one; the waiting keep their text to be summarised
    other = connect(owner="second")  # another worker's process summarises them
    features = '{"v":1,"t":{"quay":1.0},"n":{},"w":3,"h":"q"}'
    with other.transaction():
        assert other.set_summary(waiting[0], SUMMARY, features)
        assert other.set_summary(waiting[1], Summary(("Short.",), "news", "german", "a note"), "")
    assert not other.set_summary(waiting[0], SUMMARY, "")  # summarised once: a second try (a retried task) changes nothing
    assert [n for n, _ in store.awaiting_summary(waiting)] == [waiting[2]]
    second = store.create_edition("daily", ["news"], 50, NOW + timedelta(hours=1), [])
    assert second is not None and [(a.title, a.summary) for a in second.articles] == [
        ("Title w0", SUMMARY.sentences),
        ("Title w1", ("Short.",)),
    ]
    assert store.story_features([a.id for a in second.articles]) == [features, ""]
    assert second.articles[1].language == "german"  # the summary's language, as the source gave none
    assert store.search(["short"], None, None, 5)[0].article.title == "Title w1"  # its summary is searchable
    with store.transaction():
        assert store.set_summary(waiting[2], SUMMARY, "")
    third = store.create_edition("daily", ["news"], 50, NOW + timedelta(hours=2), [])
    assert third is not None and [a.title for a in third.articles] == ["Title w2"]  # each in exactly one edition


def test_a_readers_watermark_stops_before_an_article_waiting_for_its_summary(store: Store) -> None:
    ann, _ = store.add_subscriber("daily", "ann@example.com", "", "Europe/London", "07:00", [], [], "active", NOW)
    add(store, article("a", title="Harbour reopens"))
    with store.transaction():
        waiting = store.add_article(article("b", title="Ferries"), None, NOW)
    add(store, article("c", title="Trams"))
    slot = NOW + timedelta(days=1)
    first, _ = store.create_subscriber_edition("daily", ["news"], [ann.id], ann.watermark, slot, 50, lambda t: True, slot)
    assert first is not None and [a.title for a in first.articles] == ["Harbour reopens"]
    assert waiting is not None
    with store.transaction():
        store.set_summary(waiting, SUMMARY, "")
    later = slot + timedelta(days=1)
    moved = store.subscriber(ann.id)
    assert moved is not None
    second, _ = store.create_subscriber_edition("daily", ["news"], [ann.id], moved.watermark, later, 50, lambda t: True, later)
    assert second is not None and sorted(a.title for a in second.articles) == ["Ferries", "Trams"]


def test_a_missing_edition_is_a_store_error(store: Store) -> None:
    with pytest.raises(StoreError):
        store.edition(12345)


def test_two_connections_making_editions_at_once_share_no_article(connect: Connect) -> None:
    add(connect(), *(article(f"a{n}") for n in range(40)))
    made: list[int] = []
    start = threading.Barrier(4)

    def make(owner: str) -> None:
        store = connect(owner=owner)  # a connection is never shared between threads
        try:
            start.wait()
            for _ in range(5):
                edition = store.create_edition("daily", ["news"], 7, NOW, [])
                made.extend(a.id for a in edition.articles) if edition else None
        finally:
            store.close()

    threads = [threading.Thread(target=make, args=(f"owner{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(made) == sorted(set(made)) and len(made) == 40


def test_a_digest_run_is_remembered_and_never_moves_back(store: Store) -> None:
    assert store.last_digest_run("daily") is None
    with store.transaction():
        store.record_digest_run("daily", NOW)
        store.record_digest_run("daily", NOW - timedelta(hours=1))
    assert store.last_digest_run("daily") == NOW


# The outbox


def test_an_edition_and_its_outbox_rows_are_made_together_and_tried_when_due(store: Store) -> None:
    add(store, article("a"))
    edition = store.create_edition("daily", ["news"], 50, NOW, [("files", "/out"), ("email", "a@example.org")])
    assert edition is not None
    pending = store.due_deliveries(NOW)
    assert [(d.channel, d.recipient, d.status, d.created) for d in pending] == [
        ("files", "/out", "pending", NOW),
        ("email", "a@example.org", "pending", NOW),
    ]
    with store.transaction():
        store.record_attempt(pending[0].id, NOW, "delivered")
        store.record_attempt(pending[1].id, NOW, "pending", "451 try later", NOW + timedelta(minutes=1))
    assert store.due_deliveries(NOW) == []
    [waiting] = store.due_deliveries(NOW + timedelta(minutes=1))
    assert (waiting.attempts, waiting.last_error) == (1, "451 try later")
    assert [d.channel for d in store.due_deliveries(None)] == ["email"]
    with store.transaction():
        store.record_attempt(waiting.id, NOW, "failed", "550 no such user")
    assert [(d.channel, d.status) for d in store.deliveries(["failed", "delivered"])] == [
        ("files", "delivered"),
        ("email", "failed"),
    ]


def test_a_message_id_is_kept_once_made(store: Store) -> None:
    add(store, article("a"))
    store.create_edition("daily", ["news"], 50, NOW, [("email", "a@example.org")])
    [delivery] = store.due_deliveries(NOW)
    with store.transaction():
        store.set_message_id(delivery.id, "<first@example.org>")
        store.set_message_id(delivery.id, "<second@example.org>")
    assert store.due_deliveries(NOW)[0].message_id == "<first@example.org>"


def test_a_delivery_is_leased_to_one_owner_until_its_lease_ends(connect: Connect) -> None:
    first, second = connect(owner="first"), connect(owner="second")
    add(first, article("a"))
    first.create_edition("daily", ["news"], 50, NOW, [("email", "a@example.org")])
    [delivery] = first.due_deliveries(NOW)
    assert first.claim_delivery(delivery.id, NOW, LEASE)
    assert not second.claim_delivery(delivery.id, NOW + timedelta(minutes=9), LEASE)  # the first's lease runs
    assert first.claim_delivery(delivery.id, NOW + timedelta(minutes=9), LEASE)  # its owner renews it
    assert not second.claim_delivery(delivery.id, NOW + timedelta(minutes=18), LEASE)
    assert second.claim_delivery(delivery.id, NOW + timedelta(minutes=19), LEASE)  # expired: the first is presumed gone
    assert not first.claim_delivery(delivery.id, NOW + timedelta(minutes=20), LEASE)
    with second.transaction():
        second.record_attempt(delivery.id, NOW + timedelta(minutes=20), "delivered")
    assert not first.claim_delivery(delivery.id, NOW + timedelta(hours=1), LEASE)  # delivered: nothing to claim


def test_a_recorded_attempt_or_a_handed_back_lease_frees_the_delivery_at_once(connect: Connect) -> None:
    first, second = connect(owner="first"), connect(owner="second")
    add(first, article("a"))
    first.create_edition("daily", ["news"], 50, NOW, [("email", "a@example.org"), ("email", "b@example.org")])
    a, b = first.due_deliveries(NOW)
    assert first.claim_delivery(a.id, NOW, LEASE) and first.claim_delivery(b.id, NOW, LEASE)
    with first.transaction():
        first.record_attempt(a.id, NOW, "pending", "421 busy", NOW)
    assert second.claim_delivery(a.id, NOW, LEASE)  # the attempt ended the first's lease
    assert not second.claim_delivery(b.id, NOW, LEASE)
    assert first.release_leases() == 1  # the first stops mid-delivery and hands its work back
    assert second.claim_delivery(b.id, NOW, LEASE)


# Sources


def test_each_connection_of_a_process_is_an_owner_of_its_own_and_the_process_hands_all_back(connect: Connect) -> None:
    one, two, elsewhere, third = connect(owner="proc.1"), connect(owner="proc.2"), connect(owner="other.1"), connect("third")
    add(one, article("a"))
    one.create_edition("daily", ["news"], 50, NOW, [("email", f"{n}@example.org") for n in "abc"])
    first, second, last = one.due_deliveries(NOW)
    assert one.claim_delivery(first.id, NOW, LEASE) and not two.claim_delivery(first.id, NOW, LEASE)  # two connections
    assert two.claim_delivery(second.id, NOW, LEASE) and elsewhere.claim_delivery(last.id, NOW, LEASE)
    assert one.release_leases() == 2  # its own and its process's other connection's, not another process's
    assert third.claim_delivery(first.id, NOW, LEASE) and third.claim_delivery(second.id, NOW, LEASE)
    assert not third.claim_delivery(last.id, NOW, LEASE)


def test_a_source_keeps_its_memo_from_the_last_good_poll_and_counts_failures(store: Store) -> None:
    assert store.source_state("feed").first_poll is None
    with store.transaction():
        store.record_poll("feed", NOW, {"etag": "x"}, error="HTTP 500")
    state = store.source_state("feed")
    assert (state.first_poll, state.last_poll, state.failures, state.last_error, state.memo) == (None, NOW, 1, "HTTP 500", {})
    with store.transaction():
        store.record_poll("feed", NOW + timedelta(minutes=1), {"etag": "y"})
        store.record_poll(
            "feed", NOW + timedelta(minutes=2), {"etag": "z"}, error="HTTP 429", not_before=NOW + timedelta(hours=1)
        )
    state = store.source_state("feed")
    assert state.first_poll == NOW + timedelta(minutes=1) and state.last_success == NOW + timedelta(minutes=1)
    assert (state.memo, state.failures, state.not_before) == ({"etag": "y"}, 1, NOW + timedelta(hours=1))
    assert [s.name for s in store.source_states()] == ["feed"]


def test_planned_sources_are_claimed_when_due_once_per_interval_and_by_one_claimer(connect: Connect) -> None:
    store, other = connect(), connect(owner="second")
    with store.transaction():
        store.record_poll("removed", NOW - timedelta(hours=2), {})
        store.record_poll("hourly", NOW - timedelta(minutes=30), {})
    store.plan_polls({"five": timedelta(minutes=5), "one": timedelta(minutes=1), "hourly": timedelta(hours=1)})
    assert store.claim_due_polls(NOW, LEASE, 100) == ["five", "one"]  # never polled: due at once
    assert other.claim_due_polls(NOW, LEASE, 100) == []  # claimed: no second poll deferred
    with store.transaction():
        store.record_poll("five", NOW, {"etag": "x"})
        store.record_poll("one", NOW, {}, error="HTTP 429", not_before=NOW + timedelta(hours=2))
    assert other.claim_due_polls(NOW + timedelta(minutes=4, seconds=59), LEASE, 100) == []
    assert other.claim_due_polls(NOW + timedelta(minutes=5), LEASE, 100) == ["five"]
    # a claim whose poll is never recorded (its job lost) ends with its lease
    assert store.claim_due_polls(NOW + timedelta(minutes=5) + LEASE - timedelta(seconds=1), LEASE, 100) == []
    assert store.claim_due_polls(NOW + timedelta(minutes=5) + LEASE, LEASE, 100) == ["five"]
    with store.transaction():
        store.record_poll("five", NOW + timedelta(minutes=15), {"etag": "x"})
    # "hourly" was polled before it was planned: its last poll counts; the soonest due comes first
    assert store.claim_due_polls(NOW + timedelta(minutes=30), LEASE, 100) == ["five", "hourly"]
    # the Retry-After holds "one" back beyond its interval; "removed" is not in the config: never due
    assert "one" not in store.claim_due_polls(NOW + timedelta(hours=2) - timedelta(seconds=1), LEASE, 100)
    assert store.claim_due_polls(NOW + timedelta(hours=2), LEASE, 100) == ["one"]
    assert "removed" not in store.claim_due_polls(NOW + timedelta(days=9), LEASE, 100)


def test_a_changed_interval_counts_from_the_last_poll_and_claims_come_soonest_due_first(store: Store) -> None:
    store.plan_polls({f"s{n}": timedelta(minutes=n + 1) for n in range(5)})
    assert store.claim_due_polls(NOW, LEASE, 2) == ["s0", "s1"]  # at most `limit` a time
    with store.transaction():
        for n in range(5):
            store.record_poll(f"s{n}", NOW, {})
    assert store.claim_due_polls(NOW + timedelta(minutes=10), LEASE, 3) == ["s0", "s1", "s2"]
    store.plan_polls({"s4": timedelta(seconds=30)})  # s4 every 30 s now; s0..s3 gone from the config
    assert store.claim_due_polls(NOW + timedelta(seconds=30), LEASE, 100) == ["s4"]


def test_two_workers_claiming_at_once_share_the_due_sources_without_overlap(connect: Connect) -> None:
    connect().plan_polls({f"s{n}": timedelta(minutes=5) for n in range(300)})
    claimed: list[list[str]] = []

    def claim(owner: str) -> None:
        mine = connect(owner=owner)
        try:
            for step in range(30):
                claimed.append(mine.claim_due_polls(NOW + timedelta(milliseconds=step), LEASE, 10))
        finally:
            mine.close()

    threads = [threading.Thread(target=claim, args=(f"w{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    names = [name for batch in claimed for name in batch]
    assert sorted(names) == sorted(f"s{n}" for n in range(300))  # each once


def test_a_hosts_manners_change_one_connection_at_a_time(connect: Connect) -> None:
    def bump(stored: str | None) -> tuple[str, int]:
        count = int(stored or 0) + 1
        return str(count), count

    def worker(owner: str) -> None:
        mine = connect(owner=owner)
        try:
            for _ in range(40):
                mine.change_host("http://feeds.example:80", bump)
        finally:
            mine.close()

    store = connect()
    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.change_host("http://feeds.example:80", bump) == 121  # no change lost between the workers
    assert store.change_host("http://other.example:80", bump) == 1  # each host its own


# Transactions and batches


def test_a_failed_transaction_keeps_nothing_and_a_failed_nested_one_only_itself(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.add_article(article("lost"), SUMMARY, NOW)
            raise RuntimeError("crash")
    with store.transaction():
        store.add_article(article("kept"), SUMMARY, NOW)
        with pytest.raises(RuntimeError):
            with store.transaction():
                store.add_article(article("undone"), SUMMARY, NOW)
                raise RuntimeError("one bad write")
    assert store.is_known(article("kept")) and not store.is_known(article("lost")) and not store.is_known(article("undone"))


def test_a_write_batch_is_seen_by_others_only_once_committed(connect: Connect) -> None:
    writer, reader = connect(), connect(owner="reader")
    writes = writer.batch(max_writes=3, max_seconds=3600)
    with writes.write():
        writer.add_article(article("a"), SUMMARY, NOW)
    assert reader.article_count() == 0
    writes.commit()
    assert reader.article_count() == 1
    for name in ("b", "c", "d"):
        with writes.write():
            writer.add_article(article(name), SUMMARY, NOW)
    assert reader.article_count() == 4  # the third write of the batch committed it


def test_a_copy_holds_the_state_and_changing_it_changes_nothing(store: Store, connect: Connect, tmp_path: Path) -> None:
    add(store, article("a"))
    store.copy_to(tmp_path / "copy.sqlite3")
    copy = SqliteStore(tmp_path / "copy.sqlite3")
    try:
        assert copy.is_known(article("a"))
        add(copy, article("b"))
    finally:
        copy.close()
    assert store.article_count() == 1


# Retention


def test_pruned_text_keeps_identities_and_editions(store: Store) -> None:
    add(store, article("old", "An old story with plenty of words in it."), now=NOW - timedelta(days=100))
    edition = store.create_edition("daily", ["news"], 50, NOW - timedelta(days=99), [])
    add(store, article("new"))
    assert store.size().articles_with_text == 2
    assert store.prune(NOW - timedelta(days=90)) == 1
    assert store.prune(NOW - timedelta(days=90)) == 0
    size = store.size()
    assert (size.articles, size.articles_with_text) == (2, 1) and size.bytes > 0
    assert store.is_known(article("old", "An old story with plenty of words in it."))  # never comes back as new
    assert edition is not None and edition.id is not None
    assert store.edition(edition.id).articles[0].summary == SUMMARY.sentences  # old editions still render
    assert store.create_edition("daily", ["news"], 50, NOW, []) is not None  # the new one still reaches an edition


# Subscribers and the archive's ids


def test_subscribers_are_added_updated_and_removed(store: Store) -> None:
    ann, new = store.add_subscriber("daily", "ann@example.com", "Ann", "UTC", "07:00", ["harbour"], [], "invited", NOW)
    assert new and (ann.status, ann.include) == ("invited", ("harbour",))
    again, new = store.add_subscriber("daily", "ann@example.com", "Ann", "Europe/London", "08:00", [], ["sport"], "invited", NOW)
    assert not new and again.id == ann.id and (again.timezone, again.exclude) == ("Europe/London", ("sport",))
    assert store.set_subscriber_status(ann.id, "active", NOW, expected=["invited"])
    assert not store.set_subscriber_status(ann.id, "active", NOW, expected=["invited"])
    assert [s.address for s in store.subscribers("daily")] == ["ann@example.com"]
    assert store.remove_subscriber("ann@example.com") == 1 and store.subscriber(ann.id) is None


def test_a_secret_and_a_feed_id_are_made_once_and_kept(store: Store) -> None:
    assert store.secret("unsubscribe", lambda: "first") == "first"
    assert store.secret("unsubscribe", lambda: "second") == "first"
    with store.transaction():
        feed = store.feed_id("daily")
    with store.transaction():
        assert store.feed_id("daily") == feed and store.feed_id("weekly") != feed
    add(store, article("a"))
    store.create_edition("daily", ["news"], 50, NOW, [])
    [listed] = store.edition_listing("daily", 5)
    assert (listed.count, listed.headlines, listed.atom_id.startswith("urn:uuid:")) == (1, ("Title a",), True)


# Inbound mail (mailbox sources)


def test_inbound_mail_is_kept_once_per_source_and_key_and_read_back_in_order(connect: Connect) -> None:
    store, other = connect(), connect(owner="second")
    assert store.add_inbound(["letters", "tech"], "<a@x>", "news@x", b"raw a", NOW) == [True, True]
    assert other.add_inbound(["letters"], "<a@x>", "news@x", b"raw a again", NOW) == [
        False
    ]  # committed: seen by another connection
    assert store.add_inbound(["letters"], "<b@x>", "news@x", b"raw b", NOW + timedelta(minutes=1)) == [True]
    first = other.inbound_messages("letters", 0, 10)
    assert [(m.key, m.raw, m.sender, m.received) for m in first] == [
        ("<a@x>", b"raw a", "news@x", NOW),
        ("<b@x>", b"raw b", "news@x", NOW + timedelta(minutes=1)),
    ]
    assert other.inbound_messages("letters", first[0].id, 10) == first[1:]
    assert other.inbound_messages("letters", first[1].id, 10) == []
    assert [m.key for m in other.inbound_messages("tech", 0, 1)] == ["<a@x>"]


def test_mail_received_since_a_mailboxs_last_poll_began_is_found_and_a_poll_settles_it(store: Store) -> None:
    assert store.mail_since_last_poll(["letters", "tech"]) == []
    store.add_inbound(["letters", "tech"], "<a@x>", "news@x", b"raw a", NOW)
    assert store.mail_since_last_poll(["letters", "tech"]) == ["letters", "tech"]  # never polled
    assert store.mail_since_last_poll(["tech"]) == ["tech"] and store.mail_since_last_poll([]) == []
    store.record_poll("letters", NOW + timedelta(seconds=1), {"after": "1"})
    store.record_poll("tech", NOW - timedelta(seconds=1), None, error="store down")  # began before the mail came
    assert store.mail_since_last_poll(["letters", "tech"]) == ["tech"]
    store.add_inbound(["letters"], "<b@x>", "news@x", b"raw b", NOW + timedelta(minutes=1))
    assert store.mail_since_last_poll(["letters"]) == ["letters"]
    store.record_poll("letters", NOW + timedelta(minutes=2), {"after": "2"})
    assert store.mail_since_last_poll(["letters"]) == []


def test_inbound_outcomes_are_counted_per_source_with_the_last_time(store: Store) -> None:
    store.add_inbound(["letters"], "<a@x>", "news@x", b"raw", NOW)
    store.add_inbound(["letters"], "<a@x>", "news@x", b"raw", NOW + timedelta(minutes=2))
    store.count_inbound("letters", "too large", NOW + timedelta(minutes=1))
    store.count_inbound("", "unknown recipient", NOW)
    store.count_inbound("", "unknown recipient", NOW + timedelta(minutes=3))
    assert store.inbound_counts() == {
        "letters": {
            "accepted": (1, NOW),
            "duplicate": (1, NOW + timedelta(minutes=2)),
            "too large": (1, NOW + timedelta(minutes=1)),
        },
        "": {"unknown recipient": (2, NOW + timedelta(minutes=3))},
    }


# Search


def test_search_finds_every_word_in_title_summary_or_text_best_first_with_editions(store: Store) -> None:
    add(
        store,
        article("quake", "A strong earthquake shook the harbour town of Izmir on Friday.", title="Earthquake in Turkey"),
        article("tram", "The new tram line opened with a ceremony near the harbour.", title="Tram line opens"),
        article("mayor", "The mayor spoke about earthquakes, briefly.", title="Council meets"),
        article("other", "Earthquake drill at the school.", title="School news", source="elsewhere"),
    )
    edition = store.create_edition("daily", ["news"], 50, NOW, [])
    assert edition is not None
    hits = store.search(["earthquake"], None, None, 10)
    assert [hit.article.title for hit in hits][0] == "Earthquake in Turkey"  # a word in the title ranks first
    assert {hit.article.title for hit in hits} == {"Earthquake in Turkey", "Council meets", "School news"}  # "earthquakes" too
    assert [hit.article.title for hit in store.search(["HARBOUR", "tram"], None, None, 10)] == ["Tram line opens"]  # all words
    found = {hit.article.title: hit for hit in hits}
    assert [(ref.digest, ref.id) for ref in found["Earthquake in Turkey"].editions] == [("daily", edition.id)]
    assert found["School news"].editions == ()  # in no edition yet, still found
    assert "Izmir" in found["Earthquake in Turkey"].excerpt
    assert [hit.article.title for hit in store.search(["earthquake"], "daily", None, 10)] == [
        "Earthquake in Turkey",
        "Council meets",
    ]
    assert len(store.search(["earthquake"], None, None, 1)) == 1
    assert store.search(["nowhere"], None, None, 10) == []


def test_every_committed_article_is_found_by_any_connection_and_a_failed_write_by_none(connect: Connect) -> None:
    writer, reader = connect(), connect(owner="reader")
    writes = writer.batch(max_writes=100, max_seconds=3600)
    for number in range(3):
        with writes.write():
            writer.add_article(article(f"kept-{number}", f"Flood warning number {number} for the valley."), SUMMARY, NOW)
    with pytest.raises(RuntimeError), writes.write():
        writer.add_article(article("failed", "Flood warning that was never stored."), SUMMARY, NOW)
        raise RuntimeError("one bad write")
    assert reader.search(["flood"], None, None, 10) == []  # not committed yet
    writes.commit()
    assert sorted(hit.article.title for hit in reader.search(["flood", "valley"], None, None, 10)) == [
        "Title kept-0",
        "Title kept-1",
        "Title kept-2",
    ]
    assert reader.search(["stored"], None, None, 10) == []
    writer.index_for_search()  # nothing left to index, so nothing changes
    assert len(writer.search(["flood"], None, None, 10)) == 3


def test_search_since_and_summary_and_pruned_text(store: Store) -> None:
    add(
        store, article("old", "Volcano erupts in the old days.", published=NOW - timedelta(days=30)), now=NOW - timedelta(days=30)
    )
    add(store, article("new", "Volcano erupts again today."))
    assert [h.article.title for h in store.search(["volcano"], None, NOW - timedelta(days=1), 10)] == ["Title new"]
    assert len(store.search(["sentence"], None, None, 10)) == 2  # the summary's words ("One sentence.")
    store.prune(NOW - timedelta(days=10))
    assert [h.article.title for h in store.search(["volcano"], None, None, 10)] == ["Title new"]  # pruned text leaves the index
    assert [h.article.title for h in store.search(["title", "old"], None, None, 10)] == ["Title old"]  # its title stays


@pytest.mark.parametrize(
    "word",
    [
        '"',
        "*",
        "NEAR(",
        "'; DROP TABLE articles; --",
        "a\x00b",
        "x" * 10_000,
        "OR",
        "-",
        "title:harbour",
        "^",
        "(",
        ")",
        "AND NOT",
        "",
        " ",
    ],
)
def test_search_words_are_data_never_syntax(store: Store, word: str) -> None:
    add(store, article("a", "Harbour news: OR and NEAR are words here; a b."))
    hits = store.search([word], None, None, 10)
    assert all(hit.article.title == "Title a" for hit in hits)
    assert store.article_count() == 1 and store.search(["harbour"], None, None, 10)  # nothing dropped or broken


def test_pruning_drops_old_mail_bytes_but_a_resend_stays_a_duplicate(store: Store) -> None:
    store.add_inbound(["letters"], "<old@x>", "news@x", b"old raw", NOW - timedelta(days=100))
    store.add_inbound(["letters"], "<new@x>", "news@x", b"new raw", NOW)
    store.prune(NOW - timedelta(days=90))
    assert [(m.key, m.raw) for m in store.inbound_messages("letters", 0, 10)] == [("<old@x>", b""), ("<new@x>", b"new raw")]
    assert store.add_inbound(["letters"], "<old@x>", "news@x", b"old raw", NOW) == [False]


def test_readers_editions_hold_each_wanted_article_once_and_the_digests_own_stay_apart(store: Store) -> None:
    ann, _ = store.add_subscriber("daily", "ann@example.com", "", "Europe/London", "07:00", [], [], "active", NOW)
    bob, _ = store.add_subscriber("daily", "bob@example.com", "", "Europe/London", "07:00", [], ["football"], "active", NOW)
    tokyo, _ = store.add_subscriber("daily", "tokyo@example.jp", "", "Asia/Tokyo", "07:00", [], [], "active", NOW)
    add(
        store,
        article("a", title="Harbour reopens"),
        article("b", title="Football final"),
        article("c", title="Trams"),
        article("x", source="elsewhere"),
        article("old", backfilled=True),
    )
    slot = NOW + timedelta(days=1)
    assert sorted(store.subscriber_times("daily")) == [("Asia/Tokyo", "07:00"), ("Europe/London", "07:00")]
    assert [s.address for s in store.due_subscribers("daily", "Europe/London", "07:00", slot)] == [
        "ann@example.com",
        "bob@example.com",
    ]

    everything, served = store.create_subscriber_edition(
        "daily", ["news"], [ann.id], ann.watermark, slot, 50, lambda t: True, slot
    )
    assert served == [ann.id] and everything is not None
    assert sorted(a.title for a in everything.articles) == ["Football final", "Harbour reopens", "Trams"]
    no_football, _ = store.create_subscriber_edition(
        "daily", ["news"], [bob.id], bob.watermark, slot, 50, lambda t: "Football" not in t, slot
    )
    assert no_football is not None and sorted(a.title for a in no_football.articles) == ["Harbour reopens", "Trams"]
    capped, _ = store.create_subscriber_edition("daily", ["news"], [tokyo.id], tokyo.watermark, slot, 2, lambda t: True, slot)
    assert capped is not None and len(capped.articles) == 2  # the oldest two; the third waits

    # served once for this moment: a second try (another process) serves nobody, and nothing repeats later
    assert store.create_subscriber_edition("daily", ["news"], [ann.id], ann.watermark, slot, 50, lambda t: True, slot) == (
        None,
        [],
    )
    assert store.due_subscribers("daily", "Europe/London", "07:00", slot) == []
    later = slot + timedelta(days=1)
    add(store, article("d", title="Ferries"))
    moved = {s.id: s for s in store.subscribers("daily", ["active"])}
    for reader, expected in ((ann, ["Ferries"]), (bob, ["Ferries"]), (tokyo, ["Ferries", "Trams"])):
        edition, _ = store.create_subscriber_edition(
            "daily", ["news"], [reader.id], moved[reader.id].watermark, later, 50, lambda t: True, later
        )
        assert edition is not None and sorted(a.title for a in edition.articles) == expected, reader.address
    assert [d.channel for d in store.deliveries(["pending"])] == ["subscriber"] * 6
    assert store.last_edition("daily") is None and store.edition_count("daily") == 0  # none counts as the digest's own
    bob_now = store.subscriber_by_address("daily", "bob@example.com")
    assert bob_now is not None and bob_now.last_slot == later and bob_now.watermark > moved[bob.id].watermark


def test_an_article_committed_late_with_a_smaller_id_still_reaches_each_reader_once(connect: Connect) -> None:
    """A poll's transaction can take an article id and commit after another poll's article with a higher
    id was stored and a reader's edition was made (PostgreSQL: ids are not in commit order; SQLite makes
    the others wait). The late article reaches every reader in a later edition, and nothing twice."""
    first = connect()
    readers = [
        first.add_subscriber("daily", f"{name}@example.com", "", "UTC", "07:00", [], [], "active", NOW)[0] for name in "ab"
    ]
    slots = [NOW + timedelta(days=1), NOW + timedelta(days=2)]
    holding, release, made = threading.Event(), threading.Event(), threading.Event()
    ids: dict[str, int | None] = {}
    sent: dict[str, list[list[str]]] = {r.address: [] for r in readers}

    def readers_editions(store: Store, slot: datetime) -> None:
        for reader in readers:
            now = store.subscriber(reader.id)
            assert now is not None
            edition, served = store.create_subscriber_edition(
                "daily", ["news"], [reader.id], now.watermark, slot, 50, lambda text: True, slot
            )
            assert served == [reader.id]
            sent[reader.address].append(sorted(a.title for a in edition.articles) if edition else [])

    def late_poll() -> None:
        store = connect(owner="late")
        try:
            with store.transaction():
                ids["late"] = store.add_article(article("late", title="Late"), SUMMARY, NOW)
                holding.set()
                release.wait(10)
        finally:
            store.close()

    def on_time_poll_and_editions() -> None:
        store = connect(owner="on time")
        try:
            ids["on time"] = add(store, article("on-time", title="On time"))[0]
            readers_editions(store, slots[0])
            made.set()
        finally:
            store.close()

    late = threading.Thread(target=late_poll)
    late.start()
    assert holding.wait(10)
    on_time = threading.Thread(target=on_time_poll_and_editions)
    on_time.start()
    overtaken = made.wait(1.0)  # PostgreSQL: done while the late transaction is open; SQLite: waits for it
    release.set()
    late.join(10)
    on_time.join(10)
    readers_editions(first, slots[1])

    if overtaken:  # the case this is about: a smaller id, committed after the edition was made
        late_id, on_time_id = ids["late"], ids["on time"]
        assert late_id is not None and on_time_id is not None and late_id < on_time_id
        assert all(editions[0] == ["On time"] for editions in sent.values())
    for address, editions in sent.items():
        assert sorted(title for edition in editions for title in edition) == ["Late", "On time"], address


def test_the_workers_one_query_look_at_readers_agrees_with_the_daemons_every_half_hour_across_both_dst_changes(
    store: Store,
) -> None:
    """`digest worker`'s tick asks reader_times (one query) whether a digest has a reader owed a mail; the
    daemon's job asks per (time zone, time). From 23 Oct to 3 Nov 2026 (Europe falls back on the 25th, New
    York on 1 Nov; London's 01:30 comes twice on the 25th) both agree at every half hour, and each reader
    gets one mail per local day, at their own time."""
    from zoneinfo import ZoneInfo

    from digest.audience import due_digests, make_editions
    from digest.config import DigestConfig

    start = datetime(2026, 10, 23, tzinfo=timezone.utc)
    wishes = {"london@example.com": ("Europe/London", "01:30"), "tokyo@example.jp": ("Asia/Tokyo", "07:00")}
    wishes["newyork@example.com"] = ("America/New_York", "18:00")
    for address, (zone, at) in wishes.items():
        store.add_subscriber("daily", address, "", zone, at, [], [], "active", start)
    store.add_subscriber("other", "idle@example.com", "", "UTC", "12:00", [], [], "unsubscribed", start)
    daily = DigestConfig(name="daily")
    made: dict[str, list[datetime]] = {address: [] for address in wishes}
    moment = start
    while moment < datetime(2026, 11, 3, tzinfo=timezone.utc):
        looked = due_digests(store.reader_times(), moment)
        before = {s.address: s.last_slot for s in store.subscribers("daily", ["active"])}
        served = make_editions(store, daily, ["news"], moment)
        assert looked == (["daily"] if served else []), moment
        for reader in store.subscribers("daily", ["active"]):
            if reader.last_slot != before[reader.address]:
                assert reader.last_slot is not None
                made[reader.address].append(reader.last_slot)
        moment += timedelta(minutes=30)
    for address, (zone, at) in wishes.items():
        local = [m.astimezone(ZoneInfo(zone)) for m in made[address]]
        assert [m.strftime("%H:%M") for m in local] == [at] * len(local), address
        assert len({m.date() for m in local}) == len(local) >= 10, address  # one mail per local day
