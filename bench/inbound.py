"""The newsletter listener under load: one SMTP client sends many 50 kB messages over one connection.

    python bench/inbound.py [--messages 5000] [--size 51200] [--runs 3]

Each run starts the real `digest inbound` (a subprocess, fresh store in a temp folder), sends the
messages with smtplib, each answered 250 only once committed, and prints the messages accepted per
second (first MAIL to last 250) and the listener's memory: its RSS once 100 messages were taken,
and the highest RSS seen after that (sampled every 50 ms from /proc), whose difference is the growth.
"""

from __future__ import annotations

import argparse
import os
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from email.message import EmailMessage
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ADDRESS = "letters.k7q2m9x4wd3p@news.example.org"
WARM_UP = 100


def rss_mb(pid: int) -> float:
    """The process's resident set size in MB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def newsletter(number: int, size: int) -> bytes:
    """A newsletter-like HTML message of about `size` bytes, with its own Message-ID."""
    paragraph = (
        "<p>The council met again on the housing plan, and members asked for more detail on the schools "
        "and the tram stops before the final vote, which is now expected in the spring.</p>\n"
    )
    message = EmailMessage()
    message["From"] = "City Notes <citynotes@substack.com>"
    message["To"] = ADDRESS
    message["Subject"] = f"Issue {number}"
    message["Message-ID"] = f"<bench-{number}@substack.com>"
    message.set_content("Plain part.\n")
    head = message.as_bytes()
    body = paragraph * max(1, (size - len(head) - 400) // len(paragraph))
    message.add_alternative(f"<html><body>{body}</body></html>", subtype="html", cte="8bit")
    return message.as_bytes().replace(b"\n", b"\r\n")


def one_run(count: int, size: int) -> tuple[float, float, float]:
    """Messages per second, RSS after the warm-up and its growth after that (MB)."""
    with tempfile.TemporaryDirectory(prefix="digest-bench-inbound-") as folder:
        root = Path(folder)
        port = free_port()
        (root / "digest.toml").write_text(
            f"""
[store]
path = "state/digest.sqlite3"
[[sources]]
name = "letters"
type = "mailbox"
address = "{ADDRESS}"
[[digests]]
name = "daily"
output_dir = "out"
[inbound]
listen = "127.0.0.1:{port}"
max_bytes = 10485760
""",
            encoding="utf-8",
        )
        environment = {**os.environ, "PYTHONPATH": str(REPO)}
        listener = subprocess.Popen(
            [sys.executable, "-m", "digest", "--config", str(root / "digest.toml"), "inbound"],
            env=environment,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert listener.stderr is not None
        line = listener.stderr.readline()
        assert "inbound listening" in line, line + listener.stderr.read()
        messages = [newsletter(number, size) for number in range(count)]
        peak = [0.0]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.wait(0.05):
                peak[0] = max(peak[0], rss_mb(listener.pid))

        sampler = threading.Thread(target=sample)
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
                client.ehlo()
                for number in range(WARM_UP):
                    client.sendmail("citynotes@substack.com", [ADDRESS], newsletter(count + number, size))
                warm = rss_mb(listener.pid)
                sampler.start()
                started = time.perf_counter()
                for message in messages:
                    client.sendmail("citynotes@substack.com", [ADDRESS], message)
                elapsed = time.perf_counter() - started
            sampling.set()
            sampler.join()
            peak[0] = max(peak[0], rss_mb(listener.pid))
        finally:
            listener.terminate()
            listener.wait(timeout=15)
        return count / elapsed, warm, peak[0] - warm


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--size", type=int, default=50 * 1024)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    results = []
    for run in range(options.runs):
        rate, warm, growth = one_run(options.messages, options.size)
        results.append((rate, warm, growth))
        print(
            f"run {run + 1}: {rate:.0f} messages/s, RSS {warm:.1f} MB after {WARM_UP} messages, growth {growth:+.1f} MB",
            flush=True,
        )
    print(
        f"median of {options.runs}: {statistics.median(r[0] for r in results):.0f} messages/s accepted, "
        f"memory growth {statistics.median(r[2] for r in results):+.1f} MB "
        f"({options.messages} messages of {options.size // 1024} kB, one client)"
    )


if __name__ == "__main__":
    main()
