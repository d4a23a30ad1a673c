"""Email addresses as people write them, checked and normalised (email-validator, no DNS).

`Name <addr>` and bare addresses are accepted; internationalised local parts and
domains are kept in Unicode (sent with SMTPUTF8), and the domain is normalised
(and the local part lower-cased) so that one reader is one address however
it was typed.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import parseaddr

from email_validator import EmailNotValidError, validate_email

_FORBIDDEN = "\r\n\x00"


@dataclass(frozen=True)
class Mailbox:
    """A checked address: `address` is the normalised addr-spec, `name` the display name or ""."""

    address: str
    name: str = ""

    @property
    def international(self) -> bool:
        """True when the address needs SMTPUTF8 (a non-ASCII local part or domain)."""
        return not self.address.isascii()

    def __str__(self) -> str:
        """As a To line shows it: `Name <addr>`, or the bare address."""
        if not self.name:
            return self.address
        username, _, domain = self.address.rpartition("@")
        return str(Address(display_name=self.name, username=username, domain=domain))


def parse_mailbox(text: str) -> Mailbox:
    """Check `text` (`addr` or `Name <addr>`); ValueError with a one-line reason when it is not an address."""
    if any(c in text for c in _FORBIDDEN):
        raise ValueError(f"not an email address: {text!r} (it holds a line break or NUL)")
    name, bare = parseaddr(text.strip())
    if not bare or ("<" in text and ">" not in text):
        raise ValueError(f"not an email address: {text!r}")
    try:
        checked = validate_email(bare, check_deliverability=False)
    except EmailNotValidError as error:
        raise ValueError(f"not an email address: {text!r} ({error})") from None
    # Local parts are case-sensitive on paper, never in practice: one reader is one address.
    return Mailbox(f"{checked.local_part.lower()}@{checked.domain}", " ".join(name.split()))
