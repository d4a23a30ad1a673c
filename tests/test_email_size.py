"""An email edition stays within [digests] email_max_bytes (Gmail clips past 102 kB): headlines first,
as many summaries as fit, and the email says how many stories it had no room for."""

from __future__ import annotations

import re
import textwrap
from datetime import datetime, timezone
from pathlib import Path

from tests.smtpserver import Received, smtp_server
from tests.inprocess import run_in_process

T0 = datetime(2026, 11, 27, 7, 0, tzinfo=timezone.utc)
SENTENCE = (
    "The regional council of {place} met on Tuesday to discuss story {n} and its long list of budget items, bridges and schools."
)


def write_stories(folder: Path, count: int, sentences: int = 6) -> list[str]:
    """`count` long stories as text files; their titles."""
    folder.mkdir(parents=True)
    titles = []
    for n in range(count):
        title = f"Story {n:03d}: a long headline about the council, the harbour bridge and the new night trams"
        body = " ".join(SENTENCE.format(place=f"Place{n}x{k}", n=n) for k in range(sentences))
        (folder / f"{n:03d}.txt").write_text(f"{title}\n\n{body}\n", encoding="utf-8")
        titles.append(title)
    return titles


def project(root: Path, port: int, count: int, extra: str = "") -> tuple[Path, list[str]]:
    titles = write_stories(root / "articles", count)
    config = root / "digest.toml"
    config.write_text(
        textwrap.dedent(f"""\
        [store]
        path = "state/digest.sqlite3"

        [summary]
        workers = 0

        [[sources]]
        name = "local news"
        type = "files"
        path = "articles"

        [[digests]]
        name = "daily"
        email_to = ["ann@example.com"]
        max_articles = {count}
        unsubscribe = "https://example.org/leave"
        {extra}

        [smtp]
        host = "127.0.0.1"
        port = {port}
        from = "Daily Digest <digest@example.org>"
        """),
        encoding="utf-8",
    )
    return config, titles


def the_email(accepted: list[Received]) -> tuple[int, str, str]:
    assert len(accepted) == 1
    message = accepted[0].message
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert message["List-Unsubscribe"] == "<https://example.org/leave>"
    return len(accepted[0].content), " ".join(text.split()), html


def test_300_long_stories_make_an_email_under_100_kb_that_names_the_stories_left_out(tmp_path: Path) -> None:
    with smtp_server() as server:
        archive = 'output_dir = "out"\n        base_url = "https://news.example.org/daily/"'
        config, titles = project(tmp_path, server.port, 300, archive)
        result = run_in_process("--config", str(config), "run", cwd=tmp_path, now=T0.isoformat())
        assert result.returncode == 0, result.stderr
        size, text, html = the_email(server.accepted)
    assert size < 100_000
    shown = [title for title in titles if title in text]
    assert 20 < len(shown) < 300 and all(title in html for title in shown)
    left_out = 300 - len(shown)
    assert (
        f"This email has room for {len(shown)} of the edition's 300 stories, by headline only: {left_out} more stories are only in the full edition."
        in text
    )
    assert "only in the full edition" in " ".join(re.sub(r"<[^>]+>", " ", html).split())
    assert "Made by digest" in html  # the end of the message is there: nothing clipped
    link = re.search(r"The full edition: (https://news\.example\.org/daily/(\S+\.html))", text)
    assert link and f'<a href="{link.group(1)}">Read the full edition</a>' in html
    full = (tmp_path / "out" / "daily" / link.group(2)).read_text(encoding="utf-8")  # the archive's page of this edition
    assert all(title in full for title in titles)  # has every story


def test_headlines_all_fit_then_as_many_summaries_as_fit(tmp_path: Path) -> None:
    with smtp_server() as server:
        config, titles = project(tmp_path, server.port, 60, "email_max_bytes = 70_000")
        result = run_in_process("--config", str(config), "run", cwd=tmp_path, now=T0.isoformat())
        assert result.returncode == 0, result.stderr
        size, text, _ = the_email(server.accepted)
    assert size < 70_000 and all(title in text for title in titles)
    without = int(re.search(r"room for 60 of the edition's 60 stories, (\d+) of them by headline only\.", text).group(1))  # type: ignore[union-attr]
    summary_sentences = text.count("The regional council of")
    assert 0 < without < 60 and summary_sentences == 3 * (60 - without)  # 3 sentences a summary, for the stories with one


def test_a_small_edition_is_sent_whole_and_says_nothing_about_room(tmp_path: Path) -> None:
    with smtp_server() as server:
        config, titles = project(tmp_path, server.port, 3)
        result = run_in_process("--config", str(config), "run", cwd=tmp_path, now=T0.isoformat())
        assert result.returncode == 0, result.stderr
        _, text, _ = the_email(server.accepted)
    assert all(title in text for title in titles) and "has room for" not in text and text.count("The regional council of") == 9


def test_a_too_small_limit_is_a_config_error(tmp_path: Path) -> None:
    config, _ = project(tmp_path, 25, 1, "email_max_bytes = 5000")
    result = run_in_process("--config", str(config), "check", cwd=tmp_path)
    assert result.returncode == 2 and "email_max_bytes: must be 0 (no limit) or at least 10000, got 5000" in result.stderr


def test_a_huge_edition_is_never_rendered_whole_for_its_email() -> None:
    """Fitting 3,000 stories into 100 kB tries drafts of growing size, none much past twice the limit,
    instead of rendering (and inlining the CSS of) a multi-megabyte email first."""
    from digest.compose import Section
    from digest.mail import MailParts, encoded_size
    from digest.models import Edition, Story, StoredArticle
    from digest.render import Renderer

    summary = (SENTENCE.format(place="Harbourtown", n=1),) * 3
    articles = tuple(
        StoredArticle(
            id=n,
            source="news",
            title=f"Story {n:04d} about the harbour bridge",
            url=f"https://example.org/{n}",
            published=T0,
            author=None,
            language="en",
            summary=summary,
            fetched=T0,
        )
        for n in range(3000)
    )
    edition = Edition(digest="daily", created=T0, articles=articles, id=1)
    renderer = Renderer()
    context = renderer.context("daily", "UTC", edition, [Section("news", tuple(Story(article) for article in articles))])
    tried: list[int] = []

    def fits(document: object) -> bool:
        size = encoded_size(
            MailParts(document.subject, document.bodies["txt"], document.bodies["html"]),  # type: ignore[attr-defined]
            "Digest <digest@example.org>",
            "daily",
        )
        tried.append(size)
        return size <= 100_000

    email = renderer.render_email("daily", context, fits)
    note = re.search(
        r"room for (\d+) of the edition's 3000 stories, by headline only: (\d+) more stories are not in it",
        " ".join(email.bodies["txt"].split()),
    )
    assert fits(email) and note and int(note.group(1)) + int(note.group(2)) == 3000 and int(note.group(2)) > 0
    assert max(tried) < 250_000 and len(tried) < 30
