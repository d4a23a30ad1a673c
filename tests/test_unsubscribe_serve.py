"""One-click unsubscribe end to end: mail from `digest run` to a real aiosmtpd server, its link answered by a
real `digest serve` subprocess, and the next run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import REPO
from tests.smtpserver import Received, free_port, smtp_server
from tests.inprocess import run_in_process

DAY_ONE = "2026-11-27T07:00:00+00:00"
DAY_TWO = "2026-11-28T07:00:00+00:00"


def write_project(root: Path, port: int) -> Path:
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
        output_dir = "out"
        base_url = "https://news.example.org/daily"
        unsubscribe = "mailto:leave@example.org"

        [smtp]
        host = "127.0.0.1"
        port = {port}
        from = "Daily <digest@example.org>"
        timeout = "5s"
        """),
        encoding="utf-8",
    )
    return config


def add_story(root: Path, number: int) -> None:
    (root / "news" / f"{number}.txt").write_text(
        f"Story {number}: the ferry timetable changes\n\nThe operator said sailings move by ten minutes from "
        f"Monday. Passengers were asked to check the new times. Story {number} ends here.\n",
        encoding="utf-8",
    )


@contextmanager
def serving(config: Path) -> Iterator[str]:
    """`digest serve` in a subprocess on a free loopback port, until the block ends."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    environment["PYTHONPATH"] = str(REPO)
    server = subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(config), "serve", "--listen", f"127.0.0.1:{port}"],
        cwd=config.parent,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve never answered"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


def statuses(config: Path) -> dict[str, str]:
    listed = run_in_process("--config", str(config), "subscribers", "list", "--all", "--json", cwd=config.parent)
    assert listed.returncode == 0, listed.stderr
    return {s["address"]: s["status"] for s in json.loads(listed.stdout)}


def unsubscribe_path(received: Received) -> str:
    targets = [t.strip(" <>") for t in str(received.message["List-Unsubscribe"]).split(",")]
    assert targets[1] == "mailto:leave@example.org"
    assert targets[0].startswith("https://news.example.org/daily/unsubscribe/")
    return targets[0].removeprefix("https://news.example.org")  # what the https front end hands to digest serve


def test_one_click_post_on_digest_serve_unsubscribes_get_does_not_and_the_next_run_sends_nothing(tmp_path: Path) -> None:
    with smtp_server() as mail:
        config = write_project(tmp_path, mail.port)
        for address in ("ann@example.com", "bob@example.net"):
            assert (
                run_in_process(
                    "--config",
                    str(config),
                    "subscribers",
                    "add",
                    address,
                    "--at",
                    "07:00",
                    cwd=tmp_path,
                    now="2026-11-26T12:00:00+00:00",
                ).returncode
                == 0
            )
        add_story(tmp_path, 1)
        first = run_in_process("--config", str(config), "run", cwd=tmp_path, now=DAY_ONE)
        assert first.returncode == 0, first.stderr
        assert sorted(r.rcpt_tos[0] for r in mail.accepted) == ["ann@example.com", "bob@example.net"]
        ann = next(r for r in mail.accepted if r.rcpt_tos == ("ann@example.com",))
        path = unsubscribe_path(ann)
        assert ann.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

        with serving(config) as base:
            for _ in range(3):  # people and link-following mail scanners
                page = httpx.get(base + path, timeout=10)
                assert page.status_code == 200 and page.text.count("<button") == 1
                assert httpx.head(base + path, timeout=10).status_code == 200
            assert statuses(config) == {"ann@example.com": "active", "bob@example.net": "active"}

            forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
            assert httpx.post(base + forged, data={"List-Unsubscribe": "One-Click"}, timeout=10).status_code == 404
            assert httpx.post(base + path, data={"something": "else"}, timeout=10).status_code == 400
            assert statuses(config)["ann@example.com"] == "active"

            # RFC 8058's own example: multipart/form-data, as a mail provider posts it
            done = httpx.post(base + path, files={"List-Unsubscribe": (None, "One-Click")}, timeout=10)
            assert done.status_code == 200 and "no more mail" in done.text
            assert done.headers["cache-control"] == "no-store"
            assert statuses(config) == {"ann@example.com": "unsubscribed", "bob@example.net": "active"}

        add_story(tmp_path, 2)
        accepted_before = len(mail.accepted)
        second = run_in_process("--config", str(config), "run", cwd=tmp_path, now=DAY_TWO)
        assert second.returncode == 0, second.stderr
        later = mail.accepted[accepted_before:]
    assert [r.rcpt_tos[0] for r in later] == ["bob@example.net"]
    assert "Story 2:" in later[0].message.get_body(("plain",)).get_content()
