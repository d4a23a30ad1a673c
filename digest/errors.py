"""The project's exception tree.

Libraries' errors are translated into these at the module that imports the
library; only `cli.py` turns them into one-line messages and exit codes.

    DigestError
    ├── ConfigError            bad config file, key or value       (exit 2)
    ├── SourceError            one source failed; others go on     (exit 1)
    │   ├── FetchError         network: status, timeout, size, SSRF
    │   └── ExtractError       input that yields no usable article
    ├── SummariseError         the summariser could not run
    ├── StoreError             the SQLite store is unusable        (exit 3)
    │   └── StoreLockedError   another process holds the store
    ├── RenderError            a template is missing or broken
    ├── DeliveryError          a file or email could not be delivered
    │   ├── TemporaryDeliveryError   retried later with backoff
    │   └── PermanentDeliveryError   recorded, never retried
    ├── ListenError            a local server cannot start (address in use)  (exit 3)
    └── QueryError             a search query that cannot be used (no words, too long)  (exit 2)
"""

from __future__ import annotations


class DigestError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(DigestError):
    """A config file that cannot be used: names the file, the key and the problem."""

    def __init__(self, path: str, key: str, problem: str) -> None:
        self.path = path
        self.key = key
        self.problem = problem
        where = f"{path}: {key}: " if key else f"{path}: "
        super().__init__(f"{where}{problem}")


class SourceError(DigestError):
    """A source could not be read; the message names what and where."""


class FetchError(SourceError):
    """An HTTP fetch failed: status, timeout, size cap, redirect or blocked address.

    `retry_after` (seconds) is set when the server asked us to come back later
    (429/503 with Retry-After); the pipeline pushes that source's next poll back.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ExtractError(SourceError):
    """Input that yields no usable article (no text, unreadable file)."""


class SummariseError(DigestError):
    """The summariser could not run on a text."""


class StoreError(DigestError):
    """The SQLite store is missing, corrupt or otherwise unusable."""


class StoreLockedError(StoreError):
    """Another process holds the store's lock."""


class RenderError(DigestError):
    """A template is missing or fails to render."""


class DeliveryError(DigestError):
    """A delivery (file set or email) failed."""


class TemporaryDeliveryError(DeliveryError):
    """A failure worth retrying later: connection refused, SMTP 4xx."""


class PermanentDeliveryError(DeliveryError):
    """A failure not worth retrying: SMTP 5xx, a file that cannot be written."""


class ListenError(DigestError):
    """A local server (mailsink, inbound listener) cannot start: address in use, folder unusable."""


class QueryError(DigestError):
    """A search query that cannot be used: no words to look for, or too long."""
