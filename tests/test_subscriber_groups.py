"""Rendering grows with the groups of readers who get the same thing, not with the readers (a hundred here;
bench/subscribers.py measures 10,000, BENCHMARKS.md)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from digest import pipeline
from digest.render import Renderer
from digest.store import open_store
from tests.emailproject import make_config
from tests.smtpserver import smtp_server

SUBSCRIBED = datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)
NEXT_MORNING = datetime(2026, 11, 27, 7, 0, tzinfo=timezone.utc)
READERS = 100  # enough to tell one rendering per group from one per reader; each costs a real SMTP message


def test_a_hundred_readers_at_the_same_time_without_words_share_one_edition_rendered_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renders: list[str] = []
    original = Renderer.render_email

    def counted(self: Renderer, *args: object, **kwargs: object) -> object:
        renders.append("email")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Renderer, "render_email", counted)
    with smtp_server() as server:
        config = make_config(tmp_path, server.port, recipients=("owner@example.org",))
        store = open_store(config.store)
        with store.transaction():
            for number in range(READERS):
                store.add_subscriber(
                    "daily", f"reader{number}@example.com", "", "Europe/London", "07:00", (), (), "active", SUBSCRIBED
                )
            store.add_subscriber(
                "daily", "nocouncil@example.com", "", "Europe/London", "07:00", (), ("council",), "active", SUBSCRIBED
            )
            store.add_subscriber("daily", "tokyo@example.jp", "", "Asia/Tokyo", "07:00", (), (), "active", SUBSCRIBED)
        store.close()
        pipeline.run(config, SUBSCRIBED + timedelta(minutes=1))  # the articles arrive, the owner gets the digest
        assert len(server.accepted) == 1 and renders == ["email"]
        report = pipeline.run(config, NEXT_MORNING)
    made = [e for e in report.editions if e.subscribers]
    # London without words, London excluding "council" (one title says it), Tokyo (whose 07:00 came at
    # 22:00 UTC): three groups
    assert sorted((e.subscribers, e.articles) for e in made) == [(1, 2), (1, 3), (READERS, 3)]
    assert len(renders) == 1 + 3  # the owner's edition, then one per group
    assert len(server.accepted) == 1 + READERS + 1 + 1
    readers = {f"reader{n}@example.com" for n in range(READERS)} | {"tokyo@example.jp", "nocouncil@example.com"}
    assert {r.rcpt_tos[0] for r in server.accepted[1:]} == readers
    council = [r for r in server.accepted if r.rcpt_tos == ("nocouncil@example.com",)][0]
    assert "council" not in council.message.get_body(("plain",)).get_content().lower()
