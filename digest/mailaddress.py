"""Mailbox source addresses: a fresh hard-to-guess one, and whether one has a random part.

An address anyone can guess ("news@example.org") lets anyone put articles in
the digest; one with a random part ("news.k7q2m9x4wd3p@example.org") only those
it was given to.
"""

from __future__ import annotations

import base64
import re
import secrets

_TOKEN_BYTES = 10  # 80 bits: 16 base32 characters
_LOCAL = re.compile(r"^[a-z0-9][a-z0-9._+-]*$")
_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


def new_address(name: str, domain: str) -> str:
    """ "NAME.<16 random characters>@DOMAIN"; ValueError when name or domain cannot be in an address."""
    local = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "letters"
    domain = domain.lower().strip()
    if not _LOCAL.match(local) or not _DOMAIN.match(domain):
        raise ValueError(f"cannot make an address from {name!r} at {domain!r}")
    while True:
        token = base64.b32encode(secrets.token_bytes(_TOKEN_BYTES)).decode("ascii").lower().rstrip("=")
        if has_random_part(f"{local}.{token}@{domain}"):
            return f"{local}.{token}@{domain}"


def has_random_part(address: str) -> bool:
    """True when the local part holds a run of 12 or more letters and digits, with at least 3 of each."""
    local = address.rpartition("@")[0].lower()
    for run in re.split(r"[^a-z0-9]+", local):
        digits = sum(c.isdigit() for c in run)
        if len(run) >= 12 and digits >= 3 and len(run) - digits >= 3:
            return True
    return False
