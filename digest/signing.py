"""DKIM signatures on outgoing mail (dkimpy): relaxed/relaxed, RSA-SHA256.

The signed headers include From, To, Subject, Date, Message-ID and both
List-Unsubscribe headers (RFC 8058 asks that the signature covers them); a
header listed but absent is signed as absent, so nobody can add it later.

dkimpy is imported when a key is loaded or a message signed, not with this module: it brings dnspython
(about 0.1 CPU s), which every command importing the outbox would pay without DKIM configured.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from digest.errors import TemporaryDeliveryError

SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Id",
    "Auto-Submitted",
    "MIME-Version",
    "Content-Type",
    "Reply-To",
    "Cc",
)
_RSA_ENCRYPTION = bytes.fromhex("06092a864886f70d010101")  # the OID 1.2.840.113549.1.1.1


@dataclass(frozen=True)
class Signer:
    """A private key and where its public half is published: `<selector>._domainkey.<domain>`."""

    key: bytes
    selector: str
    domain: str

    @classmethod
    def load(cls, key_file: Path, selector: str, domain: str) -> Signer:
        """Read and check a PEM RSA private key; TemporaryDeliveryError naming the file when it is unusable
        (mail waits, and is signed once the config is fixed)."""
        from dkim.crypto import UnparsableKeyError, parse_pem_private_key

        try:
            key = key_file.read_bytes()
            parse_pem_private_key(key)
        except OSError as error:
            raise TemporaryDeliveryError(f"DKIM key {key_file}: cannot read it: {error.strerror or error}") from None
        except (UnparsableKeyError, ValueError, IndexError) as error:
            raise TemporaryDeliveryError(f"DKIM key {key_file}: not a PEM RSA private key ({error})") from None
        return cls(key, selector, domain)

    def sign(self, message: bytes) -> bytes:
        """The message with a DKIM-Signature header on top."""
        import dkim

        try:
            signature = dkim.sign(
                message,
                self.selector.encode(),
                self.domain.encode("idna"),
                self.key,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=[h.encode() for h in SIGNED_HEADERS],
            )
        except dkim.DKIMException as error:
            raise TemporaryDeliveryError(f"DKIM signing failed: {error}") from None
        return bytes(signature) + message

    @property
    def dns_name(self) -> str:
        """Where the public key is published."""
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def dns_record(self) -> str:
        """The TXT record's value: the public key of `key`."""
        from dkim.crypto import parse_pem_private_key

        private = parse_pem_private_key(self.key)
        public = _rsa_public_key_info(int(private["modulus"]), int(private["publicExponent"]))
        return f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"


def _der(tag: int, body: bytes) -> bytes:
    if len(body) < 0x80:
        return bytes([tag, len(body)]) + body
    size = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def _der_integer(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _rsa_public_key_info(modulus: int, exponent: int) -> bytes:
    """DER SubjectPublicKeyInfo of an RSA public key, as DKIM's p= tag carries it."""
    public_key = _der(0x30, _der_integer(modulus) + _der_integer(exponent))
    algorithm = _der(0x30, _RSA_ENCRYPTION + b"\x05\x00")
    return _der(0x30, algorithm + _der(0x03, b"\x00" + public_key))
