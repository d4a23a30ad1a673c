"""HTTP fetching with limits and manners: the only module that imports httpx.

One `Fetcher` is shared by every source of a run. It is thread-safe, so the
pipeline may poll many sources at once from a thread pool; the fetcher itself
bounds concurrency overall (`[fetch] concurrency`) and keeps adaptive manners
per host (`digest.manners`: a few requests in flight, fewer and further apart
when the host answers slowly or says 429/503, back up when it recovers). A
"host" is an origin, scheme://name:port, as robots.txt counts one. A host's
robots.txt is read once a run (through this fetcher, so guarded and capped) when
a page is fetched from it or when it gets a second request: its Crawl-delay
then paces the host, and pages (not feeds, which are made for programs) it
disallows are not fetched.
Each request:

- ends by `timeout`, name lookup and body included: the lookup and every socket
  read and write are given only what is left of the request's deadline, so
  neither a silent DNS server nor a trickling web server can stretch it;
- keeps at most `max_bytes` after decompression (gzip/deflate are inflated here,
  a bounded piece at a time, so a compression bomb stops at the cap);
- follows at most 5 redirects by hand, http and https only;
- connects only to addresses that pass the SSRF guard: the host name is resolved
  once, every address checked, and the connection made to the checked address
  itself (no second lookup, so DNS rebinding cannot swap it), on every hop;
- sends the ETag / Last-Modified it is given (a 304 comes back as `not_modified`);
- on 429/503 with a Retry-After, holds every request to that host back until
  then: a hold within `timeout` is waited out (and the request asked once more),
  a longer one is a FetchError carrying `retry_after`.

Every failure is a `digest.errors.FetchError` whose message is one line: the URL
and what went wrong.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import socket
import threading
import time
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpcore
import httpx

from digest.config import FetchConfig
from digest.errors import FetchError
from digest.manners import FLIGHT_SLACK, Pace, RobotRules, SharedPace, StoredManners, judge
from digest.sanitise import host_name_problem

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection is kept for the next request to its host
IDLE_POOLS = 32  # hosts whose idle connections are kept open for reuse, the most recently used
MAX_LOOKUPS = 32  # host names looked up at once: home routers' DNS forwarders drop queries past ~150
FILES_RESERVED = 64  # open files kept for all but sockets: the store, logs, templates, pipes
MAX_RETRY_AFTER = 7 * 86400.0  # a server cannot push a host back by more than a week
_REDIRECTS = {301, 302, 303, 307, 308}
_READ_SIZE = 64 * 1024
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Response:
    """The outcome of one fetch: the final URL and the (decompressed) body."""

    url: str
    status: int
    body: bytes
    content_type: str = ""
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False  # 304: nothing changed since the ETag / date we sent


class _Refused(Exception):
    """The SSRF guard refused every address of a host."""


@dataclass(frozen=True)
class AddressGuard:
    """Decides which resolved addresses may be connected to.

    Loopback, private, site-local, unspecified, multicast, reserved and other
    non-global addresses are refused unless `allow_private`; link-local ones
    (169.254.0.0/16, fe80::/10: cloud metadata services live there) unless
    `allow_link_local`, which `allow_private` does not imply. An IPv6 address
    that carries an IPv4 one (mapped, 6to4 2002::/16, Teredo 2001::/32) is
    judged by the IPv4 address too. `exempt` lists networks allowed anyway; it
    is a programmatic hook (not a config key), used by tests to serve a first
    hop from 127.0.0.2 while the rest of loopback stays refused.
    """

    allow_private: bool = False
    exempt: tuple[IPNetwork, ...] = ()
    allow_link_local: bool = False

    def refusal(self, address: IPAddress) -> str | None:
        """Why `address` may not be used (with the setting that would allow it), or None when it may."""
        if any(address in network for network in self.exempt):
            return None
        if isinstance(address, ipaddress.IPv6Address):
            if address.ipv4_mapped is not None:
                return self.refusal(address.ipv4_mapped)
            carried = [("6to4", address.sixtofour)] + [("Teredo", ipv4) for ipv4 in address.teredo or ()]
            for kind, ipv4 in carried:
                reason = self.refusal(ipv4) if ipv4 is not None else None
                if reason is not None:
                    return f"{address} is a {kind} address for {ipv4}; {reason}"
        if address.is_link_local:
            return (
                None
                if self.allow_link_local
                else f"{address} is a link-local address (set [fetch] allow_link_local = true to allow)"
            )
        if self.allow_private:
            return None
        hint = " (set [fetch] allow_private = true to allow)"
        for kind in ("loopback", "unspecified", "multicast", "private", "site_local", "reserved"):
            if getattr(address, f"is_{kind}", False):
                return f"{address} is a {kind.replace('_', '-')} address{hint}"
        if not address.is_global:
            return f"{address} is not a public address{hint}"
        return None

    def resolve(self, host: str, port: int, timeout: float | None = None) -> list[str]:
        """The addresses of `host` that pass the guard; _Refused when none do."""
        try:
            infos = _lookup(host.strip("[]"), port, timeout)
        except socket.gaierror as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error.strerror}") from None
        except UnicodeError:  # the IDNA codec: a label over 63 characters, an empty label
            raise httpcore.ConnectError(f"cannot resolve {host}: not a valid host name") from None
        if not infos:
            raise httpcore.ConnectError(f"cannot resolve {host}: no addresses")
        allowed: list[str] = []
        reasons: list[str] = []
        for info in infos:
            text = str(info[4][0]).split("%")[0]
            reason = self.refusal(ipaddress.ip_address(text))
            if reason is None:
                allowed.append(text)
            else:
                reasons.append(reason)
        if not allowed:
            raise _Refused(reasons[0])
        return list(dict.fromkeys(allowed))


_lookups = threading.BoundedSemaphore(MAX_LOOKUPS)


def _lookup(host: str, port: int, timeout: float | None) -> list[Any]:
    """getaddrinfo within `timeout`: it cannot be interrupted, so a name is looked up in a thread
    of its own and given up on when the time is over. An address needs no lookup and no thread."""
    try:
        ipaddress.ip_address(host)
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except ValueError:
        pass
    answer: list[Any] = []
    failure: list[OSError | UnicodeError] = []
    done = threading.Event()

    def look_up() -> None:
        try:
            with _lookups:
                answer.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as error:
            failure.append(error)
        finally:
            done.set()

    threading.Thread(target=look_up, name=f"lookup {host}", daemon=True).start()
    if not done.wait(timeout):
        raise httpcore.ConnectTimeout(f"no answer looking up {host} within the deadline")
    if failure:
        raise failure[0]
    return answer


_request_deadline = threading.local()


def _budget(timeout: float | None, error: type[Exception]) -> float | None:
    """The smaller of `timeout` and what is left of this thread's request deadline."""
    deadline: float | None = getattr(_request_deadline, "value", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("request deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write fits in the current request's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _budget(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _budget(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        tls = self._inner.start_tls(ssl_context, server_hostname, _budget(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.SyncBackend):
    """Resolves each host once, checks every address, connects to a checked one."""

    def __init__(self, guard: AddressGuard) -> None:
        self._guard = guard

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        last_error: Exception | None = None
        for address in self._guard.resolve(host, port, _budget(timeout, httpcore.ConnectTimeout)):
            try:
                stream = super().connect_tcp(
                    address, port, _budget(timeout, httpcore.ConnectTimeout), local_address, socket_options
                )
                return _DeadlineStream(stream)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last_error = error
        assert last_error is not None
        raise last_error

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise _Refused("unix sockets are never used")


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with its connection pool on the guarded backend."""

    def __init__(self, backend: _GuardedBackend, ssl_context: Any, connections: int) -> None:
        super().__init__(verify=ssl_context, trust_env=False, limits=httpx.Limits(max_connections=connections))
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=connections,
            max_keepalive_connections=connections,
            keepalive_expiry=KEEPALIVE_EXPIRY,
            network_backend=backend,
        )


class _ReleasedOnClose(httpx.SyncByteStream):
    """A response body that calls `release` once, when it is closed."""

    def __init__(self, inner: Any, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release: Callable[[], None] | None = release

    def __iter__(self) -> Iterator[bytes]:
        yield from self._inner

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


Origin = tuple[bytes, bytes, int | None]


class _PerHostTransport(httpx.BaseTransport):
    """A small guarded connection pool per origin (scheme, host, port).

    httpcore's pool scans every connection and queued request on each request
    and each response's end, so one pool shared by hundreds of hosts costs time
    that grows with the square of the feeds polled at once. The pools of origins
    with no request in flight stay open for reuse, at most `keep_idle` of them
    (the least recently used is closed first), so idle sockets stay bounded.
    """

    def __init__(self, guard: AddressGuard, connections_per_host: int, keep_idle: int) -> None:
        self._backend = _GuardedBackend(guard)
        self._ssl_context = httpx.create_ssl_context(trust_env=False)  # one for every host: each loads the CA file
        self._connections = connections_per_host
        self._keep_idle = keep_idle
        self._pools: dict[Origin, _GuardedTransport] = {}
        self._in_flight: dict[Origin, int] = {}
        self._idle: OrderedDict[Origin, None] = OrderedDict()
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        origin = (request.url.raw_scheme, request.url.raw_host, request.url.port)
        with self._lock:
            pool = self._pools.get(origin)
            if pool is None:
                pool = self._pools[origin] = _GuardedTransport(self._backend, self._ssl_context, self._connections)
            self._idle.pop(origin, None)
            self._in_flight[origin] = self._in_flight.get(origin, 0) + 1
        try:
            response = pool.handle_request(request)
        except BaseException:
            self._release(origin)
            raise
        response.stream = _ReleasedOnClose(response.stream, lambda: self._release(origin))
        return response

    def _release(self, origin: Origin) -> None:
        """One request to `origin` ended; past `keep_idle` idle pools, close the oldest."""
        closing: list[_GuardedTransport] = []
        with self._lock:
            self._in_flight[origin] -= 1
            if self._in_flight[origin] == 0:
                del self._in_flight[origin]
                self._idle[origin] = None
                while len(self._idle) > self._keep_idle:
                    oldest, _ = self._idle.popitem(last=False)
                    closing.append(self._pools.pop(oldest))
        for pool in closing:
            pool.close()

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
            self._idle.clear()
        for pool in pools:
            pool.close()


def usable_concurrency(config: FetchConfig) -> int:
    """`config.concurrency`, or fewer requests at once when the open-file limit cannot hold their sockets.

    The soft limit is raised toward the hard one first, as Go's runtime does:
    macOS starts processes at 256 open files, fewer than the default needs.
    """
    try:
        import resource
    except ImportError:  # not a Unix: no such limit to mind
        return config.concurrency
    idle_sockets = min(config.concurrency, IDLE_POOLS) * config.per_host_concurrency
    needed = config.concurrency + idle_sockets + FILES_RESERVED
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return config.concurrency
    raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        soft = raised
    except (ValueError, OSError):
        pass
    usable = max(1, min(config.concurrency, soft - idle_sockets - FILES_RESERVED))
    if usable < config.concurrency:
        log.warning(
            "[fetch] concurrency = %d needs %d open files, and this process may open %d: %d requests at once instead",
            config.concurrency,
            needed,
            soft,
            usable,
        )
    return usable


@dataclass
class _Ticket:
    """What one request learned, for its host's pace: the status and when the headers came."""

    status: int | None = None
    header_seconds: float = 0.0
    retry_after: float | None = None


@dataclass
class _Busy:
    """A 429/503 that named a Retry-After: the fetch may wait it out and ask once more."""

    status: int
    wait: float


@dataclass
class _Host:
    """One host's pace (digest.manners), the condition its waiting requests sleep on, its robots.txt."""

    pace: Pace
    turn: threading.Condition = field(default_factory=threading.Condition)
    robots_lock: threading.Lock = field(default_factory=threading.Lock)
    robots: RobotRules | None = None
    requests: int = 0  # started this run; from the second on, robots.txt is read for its Crawl-delay


class Fetcher:
    """The shared, thread-safe HTTP client of a run; see the module docstring.

    `fetch` may be called from many threads at once (e.g. one per source in a
    ThreadPoolExecutor); waits for a host's turn happen in the calling thread.
    `clock` (monotonic seconds) is injectable for tests of the pace.
    """

    def __init__(
        self,
        config: FetchConfig,
        guard: AddressGuard | None = None,
        clock: Callable[[], float] = time.monotonic,
        shared: StoredManners | None = None,
    ) -> None:
        self.config = config
        self._shared = shared  # per-host manners held with other processes (digest worker), instead of in here
        self.guard = guard or AddressGuard(allow_private=config.allow_private, allow_link_local=config.allow_link_local)
        self._clock = clock
        self._timeout = config.timeout.total_seconds()
        self.concurrency = usable_concurrency(config)
        self._overall = threading.BoundedSemaphore(self.concurrency)
        self._hosts: dict[str, _Host] = {}
        self._hosts_lock = threading.Lock()
        self._client = httpx.Client(
            transport=_PerHostTransport(self.guard, config.per_host_concurrency, keep_idle=min(self.concurrency, IDLE_POOLS)),
            timeout=httpx.Timeout(self._timeout),
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": config.user_agent, "Accept-Encoding": "gzip, deflate"},
        )

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None, accept: str = "*/*", robots: bool = False
    ) -> Response:
        """GET `url` within the limits; FetchError (one line: URL and what) on any failure.

        `robots`: the URL is a page (not a feed), fetched only where its host's robots.txt allows."""
        return self._fetch(url, etag=etag, last_modified=last_modified, accept=accept, robots=robots, statuses=False)

    def _fetch(
        self, url: str, *, etag: str | None, last_modified: str | None, accept: str, robots: bool, statuses: bool
    ) -> Response:
        """`fetch`; with `statuses`, an HTTP error status comes back as a Response instead of a FetchError."""
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        deadline: float | None = None
        current = url
        waited = False
        hops = 0
        try:
            while hops <= MAX_REDIRECTS:
                origin = _check_url(current)
                host = self._host(origin)
                if robots or (host.requests and not statuses):
                    self._mind_robots(host, current, page=robots)
                ticket = _Ticket()
                with self._turn(host, current, ticket), self._overall:
                    if deadline is None:
                        deadline = time.monotonic() + self._timeout
                    _request_deadline.value = deadline
                    try:
                        result = self._request(current, origin, headers, ticket, statuses)
                    finally:
                        _request_deadline.value = None
                if isinstance(result, Response):
                    return result
                if isinstance(result, _Busy):
                    if waited or result.wait > self._timeout:
                        raise FetchError(
                            f"{current}: HTTP {result.status}, server asks to retry after {result.wait:.0f}s",
                            retry_after=result.wait,
                        )
                    waited, deadline = True, None  # the host's turn waits out the Retry-After; then one more try
                    continue
                current = result
                hops += 1
            raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects (last to {current})")
        except FetchError:
            raise
        except _Refused as refused:
            raise FetchError(f"{current}: refused: {refused}") from None
        except httpx.InvalidURL as error:  # not an httpx.HTTPError: e.g. a bad IPv4 address, a control character
            raise FetchError(f"{current}: not a valid URL ({_one_line(error)})") from None
        except httpx.TimeoutException:
            raise FetchError(f"{current}: no complete response within {self._timeout:g}s") from None
        except httpx.RemoteProtocolError as error:
            raise FetchError(f"{current}: broken response: {_one_line(error)}") from None
        except (httpx.ConnectError, httpcore.ConnectError) as error:
            raise FetchError(f"{current}: cannot connect: {_one_line(error)}") from None
        except httpx.HTTPError as error:
            raise FetchError(f"{current}: {type(error).__name__}: {_one_line(error)}") from None
        except (OSError, ValueError) as error:  # e.g. an ssl error outside httpx's mapping, a bad header
            raise FetchError(f"{current}: {_one_line(error)}") from None

    def _request(self, url: str, origin: str, headers: dict[str, str], ticket: _Ticket, statuses: bool) -> Response | str | _Busy:
        """One hop: the Response, the next URL when the server redirects, or _Busy for a Retry-After."""
        asked = time.monotonic()
        with self._client.stream("GET", url, headers=headers) as response:
            status = ticket.status = response.status_code
            ticket.header_seconds = time.monotonic() - asked
            if status in _REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    raise FetchError(f"{url}: HTTP {status} redirect without a Location")
                return urljoin(url, str(location).strip())
            if status in (429, 503):
                wait = _retry_after(response.headers.get("Retry-After"))
                if wait is not None:
                    ticket.retry_after = wait
                    return _Busy(status, wait)
            if status >= 400 and not statuses:
                raise FetchError(f"{url}: HTTP {status} {response.reason_phrase}".rstrip())
            common = {
                "url": url,
                "status": status,
                "content_type": response.headers.get("Content-Type", ""),
                "etag": response.headers.get("ETag"),
                "last_modified": response.headers.get("Last-Modified"),
            }
            if status == 304:
                return Response(body=b"", not_modified=True, **common)
            encoding = response.headers.get("Content-Encoding", "")
            declared = response.headers.get("Content-Length", "")
            if not encoding and declared.isdigit() and int(declared) > self.config.max_bytes:
                raise FetchError(f"{url}: body larger than max_bytes ({self.config.max_bytes} bytes): Content-Length {declared}")
            body = _read_body(url, response.iter_raw(_READ_SIZE), encoding, self.config.max_bytes)
            return Response(body=body, **common)

    def _host(self, origin: str) -> _Host:
        with self._hosts_lock:
            if origin not in self._hosts:
                pace = Pace(most=self.config.per_host_concurrency, floor=self.config.per_host_delay.total_seconds())
                self._hosts[origin] = _Host(pace)
            return self._hosts[origin]

    @contextmanager
    def _turn(self, host: _Host, url: str, ticket: _Ticket) -> Iterator[None]:
        """Wait for the host's pace to allow one more request, hold it while the request runs,
        and teach the pace what the answer was. A hold (Retry-After) longer than the request
        timeout is not waited out: FetchError with `retry_after`."""
        if self._shared is not None:
            with self._shared_turn(host, url, ticket):
                yield
            return
        with host.turn:
            while True:
                now = self._clock()
                held = host.pace.not_before - now
                if held > self._timeout:
                    raise FetchError(f"{url}: host asked to retry after {held:.0f}s more", retry_after=held)
                ready = host.pace.ready_at(now)
                if ready is not None and ready <= now:
                    break
                host.turn.wait(None if ready is None else ready - now)
            host.pace.start(now)
            host.requests += 1
        started = now
        try:
            yield
        finally:
            with host.turn:
                answer = judge(ticket.status, ticket.header_seconds)
                host.pace.finish(started, answer, self._clock(), ticket.retry_after)
                host.turn.notify_all()

    @contextmanager
    def _shared_turn(self, host: _Host, url: str, ticket: _Ticket) -> Iterator[None]:
        """`_turn` with the host's pace in the store, shared by every worker: the start and the end of the
        request are each one short transaction on the host's row; the waits between asks are slept here."""
        origin, flight = _check_url(url), uuid.uuid4().hex
        shared = self._shared
        assert shared is not None
        while True:
            now = time.time()
            begin = functools.partial(SharedPace.begin, flight=flight, now=now, until=now + self._timeout + FLIGHT_SLACK)
            wait, held = shared.change(origin, begin)
            if not wait:
                break
            if held > self._timeout:
                raise FetchError(f"{url}: host asked to retry after {held:.0f}s more", retry_after=held)
            time.sleep(min(wait, 1.0))
        with host.turn:
            host.requests += 1
        try:
            yield
        finally:
            answer = judge(ticket.status, ticket.header_seconds)
            shared.change(origin, lambda pace: pace.finish(flight, now, answer, time.time(), ticket.retry_after))

    def _mind_robots(self, host: _Host, url: str, page: bool) -> None:
        """Read the host's robots.txt once (again after a day): its Crawl-delay paces the host from then
        on; a page it disallows (or any page, while it cannot be read) is a FetchError."""
        with host.robots_lock:
            if host.robots is None or host.robots.stale(self._clock()):
                host.robots = self._read_robots(url)
                spacing = host.robots.spacing()
                if spacing is not None:
                    with host.turn:
                        host.pace.ask_at_most_every(spacing, one_at_a_time=True)
                    if self._shared is not None:
                        self._shared.change(_check_url(url), lambda shared: shared.pace.ask_at_most_every(spacing, True))
            rules = host.robots
        if page and not rules.allows(url):
            where = _robots_url(url)
            if rules.unreachable:
                raise FetchError(f"{url}: robots.txt: {rules.unreachable}")
            raise FetchError(f"{url}: disallowed by {where}")

    def _read_robots(self, url: str) -> RobotRules:
        """The rules of `url`'s host: a 4xx means none, a 5xx or no answer that it cannot be read."""
        where = _robots_url(url)
        now = self._clock()
        try:
            response = self._fetch(where, etag=None, last_modified=None, accept="text/plain", robots=False, statuses=True)
        except FetchError as error:
            return RobotRules.unavailable(str(error).removeprefix(f"{where}: "), now)
        if response.status >= 500:
            return RobotRules.unavailable(f"HTTP {response.status}, so no page of the host is fetched (RFC 9309)", now)
        if response.status >= 400:
            return RobotRules.allow_all(now)
        return RobotRules.parse(response.body, self.config.user_agent, now)


def _robots_url(url: str) -> str:
    """The robots.txt of `url`'s scheme, host and port."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.rsplit("@", 1)[-1], "/robots.txt", "", ""))


def _check_url(url: str) -> str:
    """The URL's origin (scheme://host:port, the unit of per-host manners, as for robots.txt);
    FetchError unless it is an http(s) URL with a host."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise FetchError(f"{url}: not a valid URL ({error})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(f"{url}: only http and https URLs are fetched")
    if not parts.hostname:
        raise FetchError(f"{url}: URL has no host")
    problem = host_name_problem(parts.hostname)
    if problem:
        raise FetchError(f"{url}: not a valid host name ({problem})")
    return f"{scheme}://{parts.hostname.lower()}:{port or (443 if scheme == 'https' else 80)}"


def _read_body(url: str, chunks: Iterator[bytes], encoding: str, max_bytes: int) -> bytes:
    """The decompressed body, inflated piecewise so it never grows past `max_bytes`."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        decoder = None
    elif encoding in ("gzip", "x-gzip", "deflate"):
        decoder = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
    else:
        raise FetchError(f"{url}: unsupported Content-Encoding {encoding!r}")
    body = bytearray()
    too_big = FetchError(f"{url}: body larger than max_bytes ({max_bytes} bytes)")
    try:
        for chunk in chunks:
            data = chunk if decoder is None else decoder.decompress(chunk, max_bytes - len(body) + 1)
            if len(body) + len(data) > max_bytes:
                raise too_big
            body += data
        if decoder is not None:
            if not decoder.eof:
                raise FetchError(f"{url}: compressed body is cut short")
            body += decoder.flush()
    except zlib.error as error:
        raise FetchError(f"{url}: corrupt {encoding} body ({error})") from None
    if len(body) > max_bytes:
        raise too_big
    return bytes(body)


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return min(max(0.0, (when - datetime.now(timezone.utc)).total_seconds()), MAX_RETRY_AFTER)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__
