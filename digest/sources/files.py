"""The `files` source: a folder of .txt, .md and .html files, one article per file.

A file's identity is its path inside the folder; its version is a hash of its
bytes, so an edited file becomes a new version rather than a duplicate. Its
encoding is detected (digest.decode); a binary file, or one over `max_bytes`,
is skipped with one warning. Only the start of a file that an article can use
is kept in memory (extract's caps); the rest is only hashed, a piece at a time.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from digest import extract
from digest.config import FilesSourceConfig
from digest.decode import decode_document
from digest.errors import ExtractError, SourceError
from digest.models import Article
from digest.sources import PollContext

log = logging.getLogger(__name__)
TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
HTML_SUFFIXES = extract.HTML_SUFFIXES
_READ_SIZE = 1024 * 1024


class FilesSource:
    """Reads every supported file in one folder (not its subfolders)."""

    def __init__(self, config: FilesSourceConfig) -> None:
        self.name = config.name
        self.folder = config.path
        self.max_bytes = config.max_bytes

    def poll(self, context: PollContext) -> Iterator[Article]:
        """Yield one article per readable file; a bad file is logged and skipped."""
        try:
            paths = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in TEXT_SUFFIXES | HTML_SUFFIXES)
        except OSError as error:
            raise SourceError(f"cannot list folder {self.folder}: {error.strerror or error}") from None
        for path in paths:
            if not path.is_file() or path.resolve().parent != self.folder.resolve():
                continue  # a link pointing out of the folder is not followed
            try:
                yield self.read(path)
            except ExtractError as error:
                log.warning("source %s: skipped %s: %s", self.name, path.name, error)

    def read(self, path: Path) -> Article:
        """One file as an article; ExtractError when it has no usable text, is binary or is too big."""
        html = path.suffix.lower() in HTML_SUFFIXES
        # UTF-8 takes up to 4 bytes a character: enough bytes for what extraction keeps, and no more.
        keep = 4 * (extract.MAX_HTML_CHARS if html else extract.MAX_TEXT_CHARS)
        try:
            with path.open("rb") as file:
                status = path.stat()
                if status.st_size > self.max_bytes:
                    raise ExtractError(f"larger than max_bytes ({self.max_bytes} bytes): {status.st_size} bytes")
                start = file.read(keep)
                digest = hashlib.sha256(start)
                size = len(start)
                while piece := file.read(_READ_SIZE):
                    digest.update(piece)
                    size += len(piece)
                    if size > self.max_bytes:
                        raise ExtractError(f"larger than max_bytes ({self.max_bytes} bytes)")
        except OSError as error:
            raise ExtractError(f"cannot read: {error.strerror or error}") from None
        modified = datetime.fromtimestamp(status.st_mtime, timezone.utc)
        text = decode_document(start, cut=size > len(start))
        fallback_title = path.stem.replace("_", " ").replace("-", " ")
        found = extract.from_document(text, path.suffix, fallback_title)
        return Article(
            source=self.name,
            identity=path.name,
            title=found.title,
            body=found.body,
            published=found.published or modified,
            author=found.author,
            language=found.language,
            version=digest.hexdigest()[:16],
        )
