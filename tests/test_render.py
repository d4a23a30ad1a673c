"""Rendering: autoescape, safe links, and user templates that override the theme."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from digest.compose import compose
from digest.deliver import FileDeliverer
from digest.models import Delivery, Edition, StoredArticle
from digest.render import RenderedEdition, Renderer

NOW = datetime(2026, 11, 27, 7, tzinfo=timezone.utc)


def edition(title: str, url: str | None) -> Edition:
    stored = StoredArticle(
        id=1,
        source="news",
        title=title,
        url=url,
        published=NOW,
        author=None,
        language="en",
        summary=("First <b>sentence</b>.", "Second."),
        fetched=NOW,
    )
    return Edition("daily", NOW, (stored,), id=1)


def render(renderer: Renderer, item: Edition, fmt: str) -> str:
    context = renderer.context("daily", "Europe/London", item, compose(item, ["news"]))
    return renderer.render_edition((fmt,), "{{ digest.name }}", context).bodies[fmt]


def test_html_is_escaped_and_only_http_links_survive() -> None:
    html = render(Renderer(), edition("<script>alert(1)</script>", "javascript:alert(1)"), "html")
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert "javascript:" not in html
    assert "&lt;b&gt;sentence" in html
    broken = render(Renderer(), edition("Broken link", "http://[::1"), "html")  # unparsable: shown without a link
    assert "Broken link" in broken and "http://[::1" not in broken
    linked = render(Renderer(), edition("Fine", "https://example.org/a?b=1&c=2"), "html")
    assert 'href="https://example.org/a?b=1&amp;c=2"' in linked


def test_a_user_template_overrides_only_its_own_file(tmp_path: Path) -> None:
    (tmp_path / "digest.txt").write_text("MY THEME {{ edition.count }}\n")
    renderer = Renderer(tmp_path)
    assert render(renderer, edition("T", None), "txt") == "MY THEME 1\n"
    assert "<!DOCTYPE html>" in render(renderer, edition("T", None), "html")


def test_file_delivery_never_overwrites_an_earlier_edition(tmp_path: Path) -> None:
    delivery = Delivery(1, 1, "../../escape", "files", str(tmp_path), "pending", 0, "", "", None)
    document = RenderedEdition("s", {"txt": "one"})
    first = FileDeliverer().deliver(delivery, document, NOW)
    second = FileDeliverer().deliver(delivery, RenderedEdition("s", {"txt": "two"}), NOW)
    assert first != second
    (folder,) = tmp_path.iterdir()  # the digest's name cannot climb out of output_dir
    assert "/" not in folder.name and not folder.name.startswith(".")
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["2026-11-27T070000Z-2.txt", "2026-11-27T070000Z.txt"]
    assert (folder / "2026-11-27T070000Z.txt").read_text() == "one"


def test_a_retried_file_delivery_writes_no_second_copy_and_clears_a_killed_writers_litter(tmp_path: Path) -> None:
    delivery = Delivery(1, 1, "daily", "files", str(tmp_path), "pending", 0, "", "", None)
    folder = tmp_path / "daily"
    folder.mkdir()
    dead = 2**22 + 1  # above Linux's largest pid_max: no process has it
    (folder / f".partial-{dead}-abc.txt").write_text("half an edi")  # left by a SIGKILL mid-write
    document = RenderedEdition("s", {"txt": "one", "md": "# one"})
    first = FileDeliverer().deliver(delivery, document, NOW)
    again = FileDeliverer().deliver(delivery, document, NOW)  # the crash came before the success was recorded
    assert again == first
    assert sorted(p.name for p in folder.iterdir()) == ["2026-11-27T070000Z.md", "2026-11-27T070000Z.txt"]
    assert (folder / "2026-11-27T070000Z.txt").stat().st_mode & 0o777 == 0o644
