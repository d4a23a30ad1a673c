"""Unsubscribe and confirmation links: tokens, pages and state, on a real store and a real SMTP server."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from digest import config as config_module
from digest import unsubscribe
from digest.config import Config
from digest.store import open_store
from digest.subscribers import subscribe, wishes
from tests.emailproject import make_config
from tests.smtpserver import smtp_server
from tests.inprocess import run_in_process

NOW = datetime(2026, 11, 27, 7, 0, tzinfo=timezone.utc)


def two_digest_config(tmp_path: Path, port: int = 2525) -> Config:
    make_config(tmp_path, port)
    path = tmp_path / "digest.toml"
    text = path.read_text().replace('unsubscribe = "https://example.org/leave"', 'base_url = "https://news.example.org/daily"')
    text += '\n[[digests]]\nname = "weekly"\noutput_dir = "out"\nbase_url = "https://news.example.org/weekly/"\n'
    path.write_text(text)
    return config_module.load(path)


def add(config: Config, address: str, digest: str = "daily", confirmed: bool = True) -> tuple[str, str]:
    """Subscribe `address`; (its unsubscribe token, its confirmation token)."""
    store = open_store(config.store)
    try:
        settings = config.digest(digest)
        subscriber, _ = subscribe(store, settings, address, wishes(settings, None, None, (), ()), NOW, confirmed)
        secret = unsubscribe.link_secret(store)
        return unsubscribe.token(secret, subscriber, "unsubscribe"), unsubscribe.token(secret, subscriber, "confirm")
    finally:
        store.close()


def statuses(config: Config) -> dict[tuple[str, str], str]:
    store = open_store(config.store)
    try:
        return {(s.digest, s.address): s.status for s in store.subscribers(None, ("active", "invited", "unsubscribed"))}
    finally:
        store.close()


def test_get_shows_one_button_and_changes_nothing_post_one_click_unsubscribes(tmp_path: Path) -> None:
    config = two_digest_config(tmp_path)
    ann, _ = add(config, "ann@example.com")
    bob, _ = add(config, "bob@example.net")
    for _ in range(3):  # a mail scanner following the link, several times
        page = unsubscribe.answer(config, "unsubscribe", "daily", ann, "GET", {})
        assert page.status == 200 and page.body.count("<button") == 1 and page.body.count("<form") == 1
        assert 'name="List-Unsubscribe" value="One-Click"' in page.body and "ann@example.com" in page.body
    assert statuses(config)[("daily", "ann@example.com")] == "active"

    refused = unsubscribe.answer(config, "unsubscribe", "daily", ann, "POST", {})
    assert refused.status == 400 and statuses(config)[("daily", "ann@example.com")] == "active"

    done = unsubscribe.answer(config, "unsubscribe", "daily", ann, "POST", {"List-Unsubscribe": "One-Click"})
    assert done.status == 200 and "will get no more mail" in done.body
    assert statuses(config) == {("daily", "ann@example.com"): "unsubscribed", ("daily", "bob@example.net"): "active"}
    assert ("Cache-Control", "no-store") in done.headers and ("Referrer-Policy", "no-referrer") in done.headers
    assert unsubscribe.answer(config, "unsubscribe", "daily", bob, "GET", {}).status == 200


def test_tokens_are_scoped_to_one_subscriber_one_digest_and_one_purpose(tmp_path: Path) -> None:
    config = two_digest_config(tmp_path)
    ann_daily, ann_confirm = add(config, "ann@example.com")
    ann_weekly, _ = add(config, "ann@example.com", "weekly")
    bob, _ = add(config, "bob@example.net")
    number, mac = ann_daily.split(".")
    forged = [
        f"{bob.split('.')[0]}.{mac}",  # Ann's MAC on Bob's id
        f"{number}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",  # one character off
        f"{number}.",
        number,
        "",
        "x.y",
        "9" * 30 + "." + mac,
        ann_confirm,  # a confirmation token is not an unsubscribe token
    ]
    for token in forged:
        page = unsubscribe.answer(config, "unsubscribe", "daily", token, "POST", {"List-Unsubscribe": "One-Click"})
        assert page.status == 404, token
    # Ann's daily token does nothing on the weekly digest, and an unknown digest is not found.
    assert unsubscribe.answer(config, "unsubscribe", "weekly", ann_daily, "POST", {"List-Unsubscribe": "One-Click"}).status == 404
    assert unsubscribe.answer(config, "unsubscribe", "nope", ann_daily, "GET", {}).status == 404
    assert set(statuses(config).values()) == {"active"}
    assert (
        unsubscribe.answer(config, "unsubscribe", "weekly", ann_weekly, "POST", {"List-Unsubscribe": "One-Click"}).status == 200
    )
    assert statuses(config)[("weekly", "ann@example.com")] == "unsubscribed"
    assert statuses(config)[("daily", "ann@example.com")] == "active"
    # 128 bits of MAC, URL-safe
    assert re.fullmatch(r"\d+\.[A-Za-z0-9_-]{22}", ann_daily)


def test_a_secret_from_the_environment_signs_the_links_instead_of_the_stored_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = two_digest_config(tmp_path)
    stored, _ = add(config, "ann@example.com")
    monkeypatch.setenv(unsubscribe.SECRET_ENV, "a long secret from the environment")
    from_environment, _ = add(config, "ann@example.com")
    assert stored != from_environment
    assert unsubscribe.answer(config, "unsubscribe", "daily", stored, "GET", {}).status == 404
    assert unsubscribe.answer(config, "unsubscribe", "daily", from_environment, "GET", {}).status == 200


def test_invite_mails_a_confirmation_link_whose_page_changes_nothing_until_its_button_is_pressed(tmp_path: Path) -> None:
    with smtp_server() as server:
        config = two_digest_config(tmp_path, server.port)
        invited = run_in_process(
            "--config",
            str(tmp_path / "digest.toml"),
            "subscribers",
            "invite",
            "Ann <ann@example.com>",
            "--digest",
            "daily",
            cwd=tmp_path,
            now=NOW.isoformat(),
        )
        assert invited.returncode == 0, invited.stderr
    assert "invited (waiting for confirmation)" in invited.stdout and "confirmation mail sent" in invited.stdout
    assert len(server.accepted) == 1 and server.accepted[0].rcpt_tos == ("ann@example.com",)
    mail = server.accepted[0].message
    assert mail["Subject"] == "Confirm your subscription to daily"
    text = mail.get_body(("plain",)).get_content()
    url = re.search(r"https://news\.example\.org/daily/confirm/(\S+)", text)
    assert url, text
    listed = run_in_process("--config", str(tmp_path / "digest.toml"), "subscribers", "list", "--json", cwd=tmp_path)
    assert [s["status"] for s in json.loads(listed.stdout)] == ["invited"]

    for _ in range(2):
        page = unsubscribe.answer(config, "confirm", "daily", url.group(1), "GET", {})
        assert page.status == 200 and page.body.count("<button") == 1
    assert statuses(config)[("daily", "ann@example.com")] == "invited"
    done = unsubscribe.answer(config, "confirm", "daily", url.group(1), "POST", {"confirm": "yes"})
    assert done.status == 200 and statuses(config)[("daily", "ann@example.com")] == "active"


def test_invite_without_a_base_url_is_a_config_error_and_stores_nothing(tmp_path: Path) -> None:
    make_config(tmp_path, 2525)
    result = run_in_process("--config", str(tmp_path / "digest.toml"), "subscribers", "invite", "ann@example.com", cwd=tmp_path)
    assert result.returncode == 2 and "has no base_url" in result.stderr and len(result.stderr.splitlines()) == 1
    assert (
        json.loads(
            run_in_process("--config", str(tmp_path / "digest.toml"), "subscribers", "list", "--json", cwd=tmp_path).stdout
        )
        == []
    )
