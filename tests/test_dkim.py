"""DKIM: every message sent through a real aiosmtpd server verifies with dkimpy against the
public key that `digest check --smtp` says to publish (handed to dkimpy's DNS look-up, no network)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from digest import pipeline
from digest.errors import ConfigError
from tests.emailproject import make_config
from tests.smtpserver import smtp_server
from tests.inprocess import run_in_process

T0 = datetime(2026, 11, 27, 7, 0, tzinfo=timezone.utc)


def write_key(folder: Path) -> tuple[Path, bytes]:
    """A fresh 2048-bit RSA key as PEM, and its public half as DKIM's p= carries it (DER, base64 in DNS)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = folder / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return path, public


def published_record(stdout: str) -> tuple[str, bytes]:
    """The TXT record's name and value from `digest check --smtp` output (strings joined as DNS does)."""
    match = re.search(r"^(\S+)\. IN TXT \( (.*) \)$", stdout, re.MULTILINE)
    assert match, stdout
    return match.group(1), "".join(re.findall(r'"([^"]*)"', match.group(2))).encode()


def dkim_config(tmp_path: Path, port: int, recipients: tuple[str, ...]) -> Path:
    key_file, _ = write_key(tmp_path)
    make_config(
        tmp_path, port, recipients=recipients, smtp_extra=(f'dkim_key_file = "{key_file.name}"\ndkim_selector = "mail2026"\n')
    )
    return tmp_path / "digest.toml"


def test_every_sent_message_verifies_and_the_signature_covers_both_list_unsubscribe_headers(tmp_path: Path) -> None:
    recipients = ("ann@example.com", "Bob <bob@example.net>", "josé@exämple.org")
    with smtp_server(smtputf8=True) as server:
        config_file = dkim_config(tmp_path, server.port, recipients)
        check = run_in_process("--config", str(config_file), "check", "--smtp", cwd=tmp_path)
        assert check.returncode == 0, check.stderr
        assert "dkim: signing as d=example.org s=mail2026 (relaxed/relaxed, rsa-sha256)" in check.stdout
        name, record = published_record(check.stdout)
        assert name == "mail2026._domainkey.example.org"
        report = pipeline.run(pipeline_config(config_file), T0)
    assert not report.failed, report.deliveries
    assert len(server.accepted) == 3

    looked_up: list[bytes] = []

    def dns(query: bytes, timeout: int = 5) -> bytes:
        looked_up.append(query)
        return record if query == f"{name}.".encode() or query == name.encode() else b""

    for received in server.accepted:
        assert received.content.startswith(b"DKIM-Signature:")
        assert dkim.verify(received.content, dnsfunc=dns), received.rcpt_tos
        signature = received.message["DKIM-Signature"]
        tags = dict(part.strip().split("=", 1) for part in str(signature).split(";") if "=" in part)
        signed = [h.strip().lower() for h in re.sub(r"\s+", "", tags["h"]).split(":")]
        assert {"from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"} <= set(signed)
        assert tags["c"].replace(" ", "") == "relaxed/relaxed" and tags["d"].strip() == "example.org"
        # A header added in transit breaks the signature: the check is real.
        tampered = received.content.replace(b"\r\nSubject: ", b"\r\nSubject: RE: ", 1)
        assert not dkim.verify(tampered, dnsfunc=dns)
    assert looked_up


def pipeline_config(config_file: Path):  # type: ignore[no-untyped-def]
    from digest import config

    return config.load(config_file)


def test_check_says_when_mail_is_unsigned_and_a_bad_key_is_one_line_exit_2(tmp_path: Path) -> None:
    make_config(tmp_path, 2525)
    unsigned = run_in_process("--config", str(tmp_path / "digest.toml"), "check", "--smtp", cwd=tmp_path)
    assert "dkim: not set up, mail is sent unsigned" in unsigned.stdout

    (tmp_path / "bad.pem").write_text("not a key\n")
    make_config(tmp_path, 2525, smtp_extra='dkim_key_file = "bad.pem"\ndkim_selector = "s1"\n')
    bad = run_in_process("--config", str(tmp_path / "digest.toml"), "check", "--smtp", cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "dkim_key_file" in bad.stderr and "bad.pem" in bad.stderr

    with pytest.raises(ConfigError, match="dkim_selector"):
        make_config(tmp_path, 2525, smtp_extra='dkim_key_file = "bad.pem"\n')
    no_selector = run_in_process("--config", str(tmp_path / "digest.toml"), "check", cwd=tmp_path)
    assert no_selector.returncode == 2 and "dkim_selector" in no_selector.stderr


def test_an_unusable_key_keeps_mail_pending_instead_of_sending_it_unsigned(tmp_path: Path) -> None:
    (tmp_path / "bad.pem").write_text("not a key\n")
    with smtp_server() as server:
        config = make_config(tmp_path, server.port, smtp_extra='dkim_key_file = "bad.pem"\ndkim_selector = "s1"\n')
        report = pipeline.run(config, T0)
    assert server.offered == []
    assert {d.status for d in report.deliveries if d.channel == "email"} == {"pending"}
    assert all("DKIM key" in d.error for d in report.deliveries if d.channel == "email")
