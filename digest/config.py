"""TOML config -> frozen, typed sections.

Every setting and its default is declared once, as a dataclass field below.
Unknown keys, wrong types and missing folders raise a ConfigError that names
the file, the key and what is wrong. Relative paths resolve against the config
file's folder; secrets are never read from the file, only named.
"""

from __future__ import annotations

import os
import re
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest import __version__, PROJECT_URL
from digest import registry
from digest.addresses import parse_mailbox
from digest.errors import ConfigError
from digest.order import ORDERS
from digest.schedule import LONGEST_INTERVAL, parse_schedule

DEFAULT_CONFIG = Path("config/digest.toml")
ALGORITHMS = tuple(registry.SUMMARISERS)
FORMATS = tuple(registry.FORMATS)
DEFAULT_FORMATS = ("html", "md", "txt")  # "json", the stable format for programs, only when asked for
EMAIL_MIN_BYTES = 10_000  # room for the headers, the masthead and a few headlines

NAME_MAX = 255  # bytes in one folder or file name, on every common file system
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


class Duration(timedelta):
    """A timedelta written in the config as "20s", "30m", "6h" or "2d"."""


def parse_duration(text: str) -> timedelta:
    """Turn "30m" into a timedelta; ValueError on anything else."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f'expected a duration such as "30s", "30m", "6h" or "2d", got {text!r}')
    return _seconds(float(match.group(1)) * _UNITS[match.group(2)], text)


def duration_text(span: timedelta) -> str:
    """A duration as the config writes it: "2d", "36h", "90m", "45s"."""
    seconds = span.total_seconds()
    for unit in ("d", "h", "m"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s"


def _seconds(seconds: float, written: object) -> timedelta:
    """A timedelta of `seconds`; ValueError (not OverflowError) for one past timedelta's range."""
    try:
        return timedelta(seconds=seconds)
    except (OverflowError, ValueError):
        raise ValueError(f"duration out of range: {written!r}") from None


@dataclass(frozen=True)
class StoreConfig:
    """Where the store lives: a SQLite file (by default `state/digest.sqlite3` beside the config file), or a
    PostgreSQL database when `url` is set; and how long article text is kept."""

    path: Path = Path("state/digest.sqlite3")
    keep: Duration = Duration(days=90)  # article text older than this is pruned; identities stay
    url: str = ""  # postgresql://user@host:port/database: state in PostgreSQL instead of the file at `path`
    password_env: str = "DIGEST_STORE_PASSWORD"  # the PostgreSQL password comes from this environment variable

    def check(self, where: str) -> None:
        if self.url and not re.match(r"postgres(ql)?://[^\s]+$", self.url):
            raise ValueError(f"url: expected postgresql://user@host/database, got {self.url!r}")
        if self.url and re.match(r"postgres(ql)?://[^/@]*:[^/@]*@", self.url):
            raise ValueError(f"url: no password in the url; put it in the environment variable {self.password_env}")

    @property
    def password(self) -> str:
        """The PostgreSQL password, read from the environment variable the config names."""
        return os.environ.get(self.password_env, "")

    @property
    def where(self) -> str:
        """Where the state lives, as error messages and `digest status` name it."""
        return self.url or str(self.path)

    def exists(self) -> bool:
        """Whether there is a store to read: a PostgreSQL store always is (opening it makes its tables)."""
        return bool(self.url) or self.path.exists()


@dataclass(frozen=True)
class SummaryConfig:
    """How articles are summarised."""

    algorithm: str = "news"
    sentences: int = 3
    language: str = "auto"
    workers: int | str = "auto"  # worker processes that summarise: "auto" is one per CPU core but one; 0 none

    def check(self, where: str) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm: unknown {self.algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
        if not 1 <= self.sentences <= 50:
            raise ValueError(f"sentences: must be between 1 and 50, got {self.sentences}")
        if self.workers != "auto" and (isinstance(self.workers, str) or not 0 <= self.workers <= 256):
            raise ValueError(f'workers: expected "auto" or a number from 0 to 256, got {self.workers!r}')


@dataclass(frozen=True)
class FilesSourceConfig:
    """A folder of .txt, .md and .html files, one article per file."""

    name: str
    path: Path
    type: str = "files"
    interval: Duration = Duration(minutes=5)
    max_bytes: int = 15 * 1024 * 1024  # a bigger file is skipped with a note, as [fetch] max_bytes caps a download

    def check(self, where: str) -> None:
        if not self.path.is_dir():
            raise ValueError(f"path: folder not found: {self.path}")
        if self.max_bytes < 1024:
            raise ValueError(f"max_bytes: must be at least 1024, got {self.max_bytes}")


@dataclass(frozen=True)
class FeedSourceConfig:
    """An RSS, Atom or JSON Feed."""

    name: str
    url: str
    type: str = "feed"
    interval: Duration = Duration(minutes=30)
    full_text: str = "auto"
    backfill: Duration = Duration(days=2)

    def check(self, where: str) -> None:
        _check_url(self.url)
        if self.full_text not in ("auto", "always", "never"):
            raise ValueError(f'full_text: expected "auto", "always" or "never", got {self.full_text!r}')


@dataclass(frozen=True)
class PageSourceConfig:
    """One web page, watched for changes to its main text."""

    name: str
    url: str
    type: str = "page"
    interval: Duration = Duration(hours=6)

    def check(self, where: str) -> None:
        _check_url(self.url)


@dataclass(frozen=True)
class MailboxSourceConfig:
    """Newsletters that arrive by email at an inbound address, from the allowed senders (glob patterns)."""

    name: str
    address: str
    type: str = "mailbox"
    interval: Duration = Duration(minutes=5)
    senders: tuple[str, ...] = ()  # e.g. "*@substack.com"; empty: any sender

    def check(self, where: str) -> None:
        if not _MAIL_ADDRESS.match(self.address):
            raise ValueError(f"address: not an email address: {self.address!r}")
        for pattern in self.senders:
            if not pattern.strip() or any(c in pattern for c in "\r\n <>"):
                raise ValueError(f'senders: not an address or pattern such as "*@substack.com": {pattern!r}')


SourceConfig = FilesSourceConfig | FeedSourceConfig | PageSourceConfig | MailboxSourceConfig
SOURCE_TYPES: dict[str, type] = {
    "files": FilesSourceConfig,
    "feed": FeedSourceConfig,
    "page": PageSourceConfig,
    "mailbox": MailboxSourceConfig,
}


@dataclass(frozen=True)
class DigestConfig:
    """One digest: which sources, when, how many articles, where it goes."""

    name: str
    sources: tuple[str, ...] = ()  # empty: every source
    schedule: str = "0 7 * * *"
    timezone: str = "UTC"
    max_articles: int = 50
    output_dir: Path | None = None
    formats: tuple[str, ...] = DEFAULT_FORMATS
    email_to: tuple[str, ...] = ()
    subject: str = "{{ digest.name }}: {{ edition.date }}"
    templates: Path | None = None
    unsubscribe: str = ""
    archive: bool = True  # with output_dir: keep index pages and an Atom feed of the editions there
    base_url: str = ""  # where <output_dir>/<name>/ is served, for absolute links; "" for relative ones
    feed_size: int = 20  # editions in feed.atom; older ones are in its RFC 5005 archive documents
    # The encoded email's most bytes: Gmail clips a message past 102 kB, its unsubscribe link with it. 0: no limit.
    email_max_bytes: int = 100_000
    group_stories: bool = True  # one entry per story across sources (digest.stories)
    story_window: Duration = Duration(hours=72)  # articles further apart are never one story; follow-ups look this far back
    order: str = "importance"  # of the stories: "importance", "source" or "newest" (digest.order)
    top: int = 5  # the most important stories in a "Top stories" section heading the edition; 0 for none

    def check(self, where: str) -> None:
        if len(os.fsencode(self.name)) > NAME_MAX:
            raise ValueError(f"name: longer than {NAME_MAX} bytes: it names the digest's folder under output_dir")
        if self.email_max_bytes and self.email_max_bytes < EMAIL_MIN_BYTES:
            raise ValueError(f"email_max_bytes: must be 0 (no limit) or at least {EMAIL_MIN_BYTES}, got {self.email_max_bytes}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: unknown time zone {self.timezone!r}") from None
        try:
            parse_schedule(self.schedule)
        except ValueError as error:
            raise ValueError(f"schedule: {error}") from None
        if self.max_articles < 1:
            raise ValueError(f"max_articles: must be at least 1, got {self.max_articles}")
        for fmt in self.formats:
            if fmt not in FORMATS:
                raise ValueError(f"formats: unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
        if self.output_dir is None and not self.email_to:
            raise ValueError(
                f"output_dir: digest {self.name!r} has neither output_dir nor email_to, so its editions "
                "would go nowhere and use up its articles; set one of them"
            )
        if self.templates is not None and not self.templates.is_dir():
            raise ValueError(f"templates: folder not found: {self.templates}")
        for address in self.email_to:
            try:
                parse_mailbox(address)
            except ValueError as error:
                raise ValueError(f"email_to: {error}") from None
        if self.base_url and not re.match(r"^https?://[^\s/?#]+(/[^\s?#]*)?$", self.base_url):
            raise ValueError(f"base_url: expected an http:// or https:// URL without a query, got {self.base_url!r}")
        if self.order not in ORDERS:
            raise ValueError(f"order: unknown order {self.order!r}; choose from {', '.join(ORDERS)}")
        if not 0 <= self.top <= 1000:
            raise ValueError(f"top: must be between 0 (no top stories section) and 1000, got {self.top}")
        if not 1 <= self.feed_size <= 1000:
            raise ValueError(f"feed_size: must be between 1 and 1000, got {self.feed_size}")
        if self.unsubscribe and not re.match(r"^(mailto:[^\s<>]+@[^\s<>]+|https://[^\s<>]+)$", self.unsubscribe):
            raise ValueError(f"unsubscribe: expected a mailto: address or an https:// URL, got {self.unsubscribe!r}")


@dataclass(frozen=True)
class SmtpConfig:
    """The outgoing mail server; the password comes from the environment."""

    host: str = "127.0.0.1"
    port: int = 25
    security: str = "none"
    username: str = ""
    password_env: str = "DIGEST_SMTP_PASSWORD"
    from_: str = "Digest <digest@localhost>"
    timeout: Duration = Duration(seconds=30)  # connect and every command
    give_up_after: Duration = Duration(days=2)  # a pending email is failed after this
    ca_file: Path | None = None  # extra CA certificates to trust, for an own server
    dkim_key_file: Path | None = None  # PEM RSA private key: sign outgoing mail (DKIM)
    dkim_selector: str = ""
    dkim_domain: str = ""  # default: the From address's domain

    def check(self, where: str) -> None:
        if self.security not in ("none", "starttls", "tls"):
            raise ValueError(f'security: expected "none", "starttls" or "tls", got {self.security!r}')
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port: expected 1 to 65535, got {self.port}")
        if self.timeout.total_seconds() <= 0:
            raise ValueError("timeout: must be more than zero")
        if any(c in self.from_ for c in "\r\n") or "@" not in self.from_:
            raise ValueError(f"from: not an email address: {self.from_!r}")
        if self.ca_file is not None and not self.ca_file.is_file():
            raise ValueError(f"ca_file: file not found: {self.ca_file}")
        if self.dkim_key_file is not None:
            if not self.dkim_key_file.is_file():
                raise ValueError(f"dkim_key_file: file not found: {self.dkim_key_file}")
            if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?", self.dkim_selector):
                raise ValueError(f'dkim_selector: expected a DNS label such as "mail2026", got {self.dkim_selector!r}')
        if self.dkim_domain and not re.fullmatch(r"[^\s@/:]+\.[^\s@/:]+", self.dkim_domain):
            raise ValueError(f'dkim_domain: expected a domain such as "example.org", got {self.dkim_domain!r}')

    @property
    def signing_domain(self) -> str:
        """The DKIM d= domain: `dkim_domain`, else the From address's domain."""
        return self.dkim_domain or self.from_.rpartition("@")[2].strip(" >").lower()

    @property
    def password(self) -> str:
        """The password, read from the environment variable the config names."""
        return os.environ.get(self.password_env, "")


@dataclass(frozen=True)
class FetchConfig:
    """Limits and manners of every HTTP request."""

    timeout: Duration = Duration(seconds=20)
    max_bytes: int = 15 * 1024 * 1024
    allow_private: bool = False
    allow_link_local: bool = False  # 169.254.0.0/16 and fe80::/10 (cloud metadata); allow_private does not open them
    user_agent: str = f"digest/{__version__} (+{PROJECT_URL})"
    # The floor of the adaptive gap between two starts to one host (digest.manners); 0: pace by answers alone.
    per_host_delay: Duration = Duration(seconds=0)
    per_host_concurrency: int = 4  # the most requests in flight to one host; fewer when it struggles
    # Manners are per host; across hosts, 500 slow feeds end in about one slow fetch's time.
    concurrency: int = 512

    def check(self, where: str) -> None:
        if self.max_bytes < 1024:
            raise ValueError(f"max_bytes: must be at least 1024, got {self.max_bytes}")
        if self.timeout.total_seconds() <= 0:
            raise ValueError("timeout: must be more than zero")
        if self.concurrency < 1 or self.per_host_concurrency < 1:
            raise ValueError("concurrency: concurrency and per_host_concurrency must be at least 1")
        if any(c in self.user_agent for c in "\r\n"):
            raise ValueError("user_agent: must be one line")


@dataclass(frozen=True)
class InboundConfig:
    """The listener that receives newsletters: SMTP on `listen` and/or LMTP on the Unix socket `lmtp`."""

    listen: str = "127.0.0.1:2525"  # "" for no SMTP (LMTP only)
    lmtp: Path | None = None
    max_bytes: int = 10 * 1024 * 1024
    hostname: str = ""  # in the greeting; empty: this machine's name
    tls_cert: Path | None = None  # both set: STARTTLS offered on the SMTP port
    tls_key: Path | None = None
    configured: bool = False  # set by load(): the file has an [inbound] section (subscribers' mailto: points here)

    def check(self, where: str) -> None:
        if self.listen:
            parse_listen(self.listen)
        if self.max_bytes < 1024:
            raise ValueError(f"max_bytes: must be at least 1024, got {self.max_bytes}")
        if any(c in self.hostname for c in "\r\n "):
            raise ValueError(f"hostname: must be one word, got {self.hostname!r}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert: tls_cert and tls_key go together")
        for key, value in (("tls_cert", self.tls_cert), ("tls_key", self.tls_key)):
            if value is not None and not value.is_file():
                raise ValueError(f"{key}: file not found: {value}")

    @property
    def enabled(self) -> bool:
        """True when there is somewhere to listen."""
        return bool(self.listen) or self.lmtp is not None


DEFAULT_LISTEN = "127.0.0.1:1025"
_MAIL_ADDRESS = re.compile(r"^[^@\s<>,;:\"()\[\]]+@[A-Za-z0-9.-]+$")


def parse_listen(text: str) -> tuple[str, int]:
    """ "HOST:PORT" (IPv6 as "[::1]:1025") -> (host, port); ValueError naming what is wrong."""
    host, colon, port_text = text.strip().rpartition(":")
    host = host.strip("[]")
    if not colon or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"listen: expected HOST:PORT such as {DEFAULT_LISTEN}, got {text!r}")
    return host, int(port_text)


@dataclass(frozen=True)
class Config:
    """The whole config file, section by section."""

    path: Path
    store: StoreConfig = field(default_factory=StoreConfig)
    summary: SummaryConfig = field(default_factory=SummaryConfig)
    sources: tuple[SourceConfig, ...] = ()
    digests: tuple[DigestConfig, ...] = ()
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    fetch: FetchConfig = field(default_factory=FetchConfig)
    inbound: InboundConfig = field(default_factory=InboundConfig)

    def digest(self, name: str) -> DigestConfig:
        """The digest called `name`; ConfigError when there is none."""
        for digest in self.digests:
            if digest.name == name:
                return digest
        known = ", ".join(d.name for d in self.digests) or "none"
        raise ConfigError(str(self.path), "digests", f"no digest named {name!r} (configured: {known})")

    def sources_of(self, digest: DigestConfig) -> tuple[SourceConfig, ...]:
        """The sources a digest draws from, in config order."""
        if not digest.sources:
            return self.sources
        return tuple(s for s in self.sources if s.name in digest.sources)

    def digests_of(self, source: str) -> tuple[DigestConfig, ...]:
        """The digests that draw from the source called `source` (those without `sources` take every one)."""
        return tuple(d for d in self.digests if not d.sources or source in d.sources)


def _check_url(url: str) -> None:
    if not re.match(r"^https?://[^\s/]+", url):
        raise ValueError(f"url: expected an http:// or https:// URL, got {url!r}")


def _key_name(python_name: str) -> str:
    return python_name.rstrip("_")


def _convert(value: Any, kind: Any, key: str, base: Path) -> Any:
    """Check and convert one TOML value to the declared type, or raise ValueError."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        for option in options[:-1]:  # the first type the value fits, else the last one's error
            try:
                return _convert(value, option, key, base)
            except ValueError:
                pass
        return _convert(value, options[-1], key, base)
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ValueError(f"{key}: expected a list, got {type(value).__name__}")
        (item_kind, _) = typing.get_args(kind)
        return tuple(_convert(item, item_kind, key, base) for item in value)
    if kind is Path:
        if not isinstance(value, str) or not value:
            raise ValueError(f"{key}: expected a path as a string")
        if "\0" in value:
            raise ValueError(f"{key}: a path cannot hold a NUL character")
        resolved = (base / os.path.expanduser(value)).resolve()
        if any(len(os.fsencode(part)) > NAME_MAX for part in resolved.parts):
            raise ValueError(f"{key}: a folder or file name in the path is longer than {NAME_MAX} bytes")
        return resolved
    if kind is Duration:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                return Duration(seconds=_seconds(value, value).total_seconds())
            except ValueError as error:
                raise ValueError(f"{key}: {error}") from None
        if not isinstance(value, str):
            raise ValueError(f'{key}: expected a duration such as "30m"')
        try:
            return Duration(seconds=parse_duration(value).total_seconds())
        except ValueError as error:
            raise ValueError(f"{key}: {error}") from None
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{key}: expected true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{key}: expected a whole number, got {value!r}")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise ValueError(f"{key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {kind!r}")


def _build(cls: type, table: Any, section: str, path: Path, extra: dict[str, Any] | None = None) -> Any:
    """Make section dataclass `cls` from a TOML table, naming any bad key."""
    if not isinstance(table, dict):
        raise ConfigError(str(path), section, "expected a table")
    hints = typing.get_type_hints(cls)
    declared = {_key_name(f.name): f for f in fields(cls)}
    for key in table:
        if key not in declared:
            raise ConfigError(str(path), f"{section}.{key}", f"unknown key; known keys: {', '.join(sorted(declared))}")
    values: dict[str, Any] = dict(extra or {})
    for key, spec in declared.items():
        if key in table:
            try:
                values[spec.name] = _convert(table[key], hints[spec.name], key, path.parent)
            except ValueError as error:
                raise ConfigError(str(path), f"{section}.{key}", str(error).removeprefix(f"{key}: ")) from None
        elif spec.default is MISSING and spec.default_factory is MISSING and spec.name not in values:
            raise ConfigError(str(path), f"{section}.{key}", "required key is missing")
        elif isinstance(spec.default, Path) and spec.name not in values:  # a default path is relative to the file too
            values[spec.name] = (path.parent / spec.default).resolve()
    section_value = cls(**values)
    check = getattr(section_value, "check", None)
    if check is not None:
        try:
            check(section)
        except ValueError as error:
            key, _, problem = str(error).partition(": ")
            raise ConfigError(str(path), f"{section}.{key}", problem) from None
    return section_value


def _unique_names(items: tuple[Any, ...], section: str, path: Path) -> None:
    seen: set[str] = set()
    for index, item in enumerate(items):
        if item.name in seen:
            raise ConfigError(str(path), f"{section}[{index}].name", f"duplicate name {item.name!r}")
        seen.add(item.name)


def load(path: Path) -> Config:
    """Read and validate a config file; ConfigError names whatever is wrong."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "", "config file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(str(path), "", f"cannot read: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(str(path), "", f"not valid TOML: {error}") from None
    except RecursionError:
        raise ConfigError(str(path), "", "not valid TOML: arrays or tables nested too deeply") from None
    path = path.resolve()
    simple = {"store": StoreConfig, "summary": SummaryConfig, "smtp": SmtpConfig, "fetch": FetchConfig, "inbound": InboundConfig}
    known = set(simple) | {"sources", "digests"}
    if isinstance(raw.get("inbound"), dict) and "accept" in raw["inbound"]:
        raise ConfigError(str(path), "inbound.accept", 'removed: give each [[sources]] type = "mailbox" its own address instead')
    for key in raw:
        if key not in known:
            raise ConfigError(str(path), key, f"unknown section; known sections: {', '.join(sorted(known))}")
    sections = {name: _build(cls, raw.get(name, {}), name, path) for name, cls in simple.items()}
    sections["inbound"] = replace(sections["inbound"], configured=isinstance(raw.get("inbound"), dict))
    sources = tuple(_source(entry, f"sources[{index}]", path) for index, entry in enumerate(_list(raw, "sources", path)))
    _unique_names(sources, "sources", path)
    digests = tuple(
        _build(DigestConfig, entry, f"digests[{index}]", path) for index, entry in enumerate(_list(raw, "digests", path))
    )
    _unique_names(digests, "digests", path)
    addresses: dict[str, str] = {}
    for index, source in enumerate(sources):
        if isinstance(source, MailboxSourceConfig):
            other = addresses.setdefault(source.address.lower(), source.name)
            if other != source.name:
                raise ConfigError(
                    str(path), f"sources[{index}].address", f"{source.address} is the address of source {other!r} too"
                )
    names = {s.name for s in sources}
    for index, digest in enumerate(digests):
        for name in digest.sources:
            if name not in names:
                raise ConfigError(str(path), f"digests[{index}].sources", f"no source named {name!r}")
    return Config(path=path, sources=sources, digests=digests, **sections)


def _list(raw: dict[str, Any], key: str, path: Path) -> list[Any]:
    value = raw.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(str(path), key, f"expected [[{key}]] tables")
    return value


def _source(entry: Any, section: str, path: Path) -> SourceConfig:
    if not isinstance(entry, dict):
        raise ConfigError(str(path), section, "expected a table")
    kind = entry.get("type", "files")
    if not isinstance(kind, str) or kind not in SOURCE_TYPES:
        raise ConfigError(str(path), f"{section}.type", f"unknown source type {kind!r}; choose one of {', '.join(SOURCE_TYPES)}")
    source: SourceConfig = _build(SOURCE_TYPES[kind], entry, section, path)
    if source.interval < timedelta(seconds=1):
        raise ConfigError(str(path), f"{section}.interval", f"must be at least 1s, got {entry.get('interval')!r}")
    if source.interval > LONGEST_INTERVAL:
        raise ConfigError(
            str(path), f"{section}.interval", f"must be at most {LONGEST_INTERVAL.days}d, got {entry.get('interval')!r}"
        )
    return source


def locate(explicit: str | None) -> Path:
    """The config path: --config, else $DIGEST_CONFIG, else config/digest.toml."""
    return Path(explicit or os.environ.get("DIGEST_CONFIG") or DEFAULT_CONFIG)
