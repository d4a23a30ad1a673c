"""A throwaway project for the email tests: a folder of articles, a config with recipients and [smtp]."""

from __future__ import annotations

import textwrap
from pathlib import Path

from digest import config as config_module
from digest.config import Config

TITLES = (
    "Harbour bridge reopens after storm repairs",
    "Zürich council approves night trams",
    "Markets calm%0d%0aBcc: leak@evil.test as =0D=0AX-Injected: yes rates hold",
)


def write_articles(folder: Path) -> None:
    """Three plain-text articles; the third title tries to inject a header."""
    folder.mkdir(parents=True, exist_ok=True)
    body = "The city said the work finished early. Officials thanked residents for their patience. More details follow next week."
    for number, title in enumerate(TITLES):
        (folder / f"{number}.txt").write_text(f"{title}\n\n{body} Story {number}.\n", encoding="utf-8")


def make_config(
    root: Path,
    port: int,
    recipients: tuple[str, ...] = ("ann@example.com", "bob@example.net"),
    smtp_extra: str = "",
    subject: str = "{{ digest.name }}: {{ edition.date }}",
) -> Config:
    write_articles(root / "articles")
    emails = ", ".join(f'"{r}"' for r in recipients)
    (root / "digest.toml").write_text(
        textwrap.dedent(f"""\
        [store]
        path = "state/digest.sqlite3"

        [[sources]]
        name = "local news"
        type = "files"
        path = "articles"

        [[digests]]
        name = "daily"
        email_to = [{emails}]
        subject = {subject!r}
        unsubscribe = "https://example.org/leave"

        [smtp]
        host = "127.0.0.1"
        port = {port}
        from = "Daily Digest <digest@example.org>"
        timeout = "5s"
        """)
        + smtp_extra,
        encoding="utf-8",
    )
    return config_module.load(root / "digest.toml")
