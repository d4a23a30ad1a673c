"""The fetcher against a real HTTP server on loopback: limits, manners, SSRF guard."""

from __future__ import annotations

import ipaddress
import json
import os
import pathlib
import socket
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
import zlib
from email.utils import formatdate

import pytest

from digest.config import Duration, FetchConfig
from digest.errors import FetchError
from digest.fetch import AddressGuard, Fetcher
from conftest import Project
from tests.httpserver import (
    LocalServer,
    RequestHandler,
    endless,
    gzip_bomb,
    hang,
    redirect,
    short_body,
    status,
    trickle,
    trickle_headers,
)
from tests.inprocess import invoke

DEADLINE = 1.0
REPO = pathlib.Path(__file__).resolve().parent.parent


def make_fetcher(**overrides: object) -> Fetcher:
    settings: dict[str, object] = {
        "timeout": Duration(seconds=DEADLINE),
        "max_bytes": 64 * 1024,
        "allow_private": True,
        "per_host_delay": Duration(0),
    }
    settings.update(overrides)
    return Fetcher(FetchConfig(**settings))  # type: ignore[arg-type]


def fails_within_deadline(fetcher: Fetcher, url: str) -> str:
    """Fetch `url`, expect a FetchError no later than the deadline (plus scheduling slack)."""
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(url)
    elapsed = time.monotonic() - started
    assert elapsed < DEADLINE + 0.5, f"took {elapsed:.2f}s"
    message = str(caught.value)
    assert "\n" not in message and url.split("?")[0].rsplit("/", 1)[0] in message
    return message


def test_plain_fetch_sends_user_agent_and_returns_body(http_server: LocalServer) -> None:
    url = http_server.serve("/a", "hello", "text/plain")
    with make_fetcher(user_agent="digest-test/1 (+https://example.org)") as fetcher:
        response = fetcher.fetch(url)
    assert response.body == b"hello" and response.status == 200 and response.etag
    assert http_server.requests_to("/a")[0].headers["user-agent"] == "digest-test/1 (+https://example.org)"


def test_conditional_get_returns_not_modified(http_server: LocalServer) -> None:
    url = http_server.serve("/feed", "<rss/>")
    with make_fetcher() as fetcher:
        first = fetcher.fetch(url)
        second = fetcher.fetch(url, etag=first.etag, last_modified=first.last_modified)
    assert second.not_modified and second.body == b""
    sent = http_server.requests_to("/feed")[1].headers
    assert sent["if-none-match"] == first.etag and sent["if-modified-since"] == first.last_modified


def test_server_error_is_one_line_with_url(http_server: LocalServer) -> None:
    url = http_server.route("/boom", status(500, b"oops"))
    with make_fetcher() as fetcher:
        message = fails_within_deadline(fetcher, url)
    assert message == f"{url}: HTTP 500 Internal Server Error"


@pytest.mark.parametrize("header", ["120", "DATE"])
def test_429_retry_after_is_carried_and_holds_the_host_off(http_server: LocalServer, header: str) -> None:
    value = formatdate(time.time() + 120, usegmt=True) if header == "DATE" else header
    url = http_server.route("/busy", status(429, b"slow down", {"Retry-After": value}))
    other = http_server.serve("/other", "fine")
    with make_fetcher() as fetcher:
        with pytest.raises(FetchError) as caught:
            fetcher.fetch(url)
        assert caught.value.retry_after is not None and 100 < caught.value.retry_after <= 120
        with pytest.raises(FetchError) as again:
            fetcher.fetch(other)  # same host: not asked again before the Retry-After
    assert again.value.retry_after is not None
    assert http_server.requests_to("/other") == []


def test_503_with_retry_after(http_server: LocalServer) -> None:
    url = http_server.route("/down", status(503, headers={"Retry-After": "30"}))
    with make_fetcher() as fetcher, pytest.raises(FetchError) as caught:
        fetcher.fetch(url)
    assert caught.value.retry_after == 30 and "503" in str(caught.value)


def test_server_that_never_answers_ends_by_deadline(http_server: LocalServer) -> None:
    url = http_server.route("/hang", hang)
    with make_fetcher() as fetcher:
        assert "no complete response within 1s" in fails_within_deadline(fetcher, url)


@pytest.mark.parametrize("handler", [trickle, trickle_headers])
def test_trickling_server_ends_by_deadline(http_server: LocalServer, handler: object) -> None:
    url = http_server.route("/trickle", handler)  # type: ignore[arg-type]
    with make_fetcher() as fetcher:
        assert "no complete response within" in fails_within_deadline(fetcher, url)


def test_redirect_loop_stops_after_five(http_server: LocalServer) -> None:
    http_server.route("/loop1", redirect("/loop2"))
    url = http_server.route("/loop2", redirect("/loop1", 301))
    with make_fetcher() as fetcher:
        assert "more than 5 redirects" in fails_within_deadline(fetcher, url)
    assert len(http_server.requests_to("/loop1") + http_server.requests_to("/loop2")) == 6


def test_redirects_are_followed_to_the_final_url(http_server: LocalServer) -> None:
    final = http_server.serve("/final", "here")
    url = http_server.route("/moved", redirect(final, 301))
    with make_fetcher() as fetcher:
        response = fetcher.fetch(url)
    assert response.url == final and response.body == b"here"


def test_redirect_to_other_scheme_is_refused(http_server: LocalServer) -> None:
    url = http_server.route("/file", redirect("file:///etc/passwd"))
    with make_fetcher() as fetcher, pytest.raises(FetchError, match="only http and https"):
        fetcher.fetch(url)


def test_gzip_bomb_stops_at_the_cap(http_server: LocalServer) -> None:
    url = http_server.route("/bomb", gzip_bomb(64 * 1024 * 1024))  # 64 MB inflated from ~64 KB on the wire
    with make_fetcher(max_bytes=1024 * 1024) as fetcher:
        assert "larger than max_bytes" in fails_within_deadline(fetcher, url)


def test_gzip_body_is_inflated(http_server: LocalServer) -> None:
    url = http_server.route(
        "/z", lambda r: r.respond(200, zlib.compress(b"deflated text"), headers={"Content-Encoding": "deflate"})
    )
    with make_fetcher() as fetcher:
        assert fetcher.fetch(url).body == b"deflated text"


def test_endless_body_stops_at_the_cap(http_server: LocalServer) -> None:
    url = http_server.route("/endless", endless)
    with make_fetcher() as fetcher:
        assert "larger than max_bytes" in fails_within_deadline(fetcher, url)


def test_declared_length_over_the_cap_is_refused_before_reading(http_server: LocalServer) -> None:
    url = http_server.route("/huge", short_body(b"x" * 100))  # promises 5000 bytes
    with make_fetcher(max_bytes=4096) as fetcher, pytest.raises(FetchError, match="Content-Length 5000"):
        fetcher.fetch(url)


def test_body_shorter_than_content_length(http_server: LocalServer) -> None:
    url = http_server.route("/short", short_body(b"only this"))
    with make_fetcher() as fetcher:
        assert "broken response" in fails_within_deadline(fetcher, url)


def test_private_addresses_refused_without_connecting(http_server: LocalServer) -> None:
    url = http_server.serve("/secret", "internal")
    with make_fetcher(allow_private=False) as fetcher:
        for target in (url, url.replace("127.0.0.1", "localhost"), f"http://[::ffff:127.0.0.1]:{http_server.port}/secret"):
            with pytest.raises(FetchError, match=r"refused: .*loopback address .*allow_private"):
                fetcher.fetch(target)
        for target, kind in (
            ("http://10.1.2.3/", "private"),
            ("http://169.254.169.254/latest/meta-data", "link-local"),
            ("http://0.0.0.0/", "unspecified"),
        ):
            with pytest.raises(FetchError, match=f"refused: .* {kind} address"):
                fetcher.fetch(target)
    assert http_server.requests == []


def test_redirect_to_loopback_is_refused_at_that_hop() -> None:
    """The first hop is served from 127.0.0.2, which this fetcher's guard exempts
    (a constructor argument, not a config key); every other loopback address stays
    refused, so the redirect to 127.0.0.1 and to localhost must be stopped by the
    per-hop check of the resolved address."""
    with LocalServer("127.0.0.2") as outside, LocalServer("127.0.0.1") as inside:
        inside.serve("/admin", "secret")
        outside.route("/ip", redirect(inside.url("/admin")))
        outside.route("/name", redirect(f"http://localhost:{inside.port}/admin"))
        outside.serve("/ok", "public enough")
        guard = AddressGuard(allow_private=False, exempt=(ipaddress.ip_network("127.0.0.2/32"),))
        fetcher = Fetcher(FetchConfig(timeout=Duration(seconds=DEADLINE), allow_private=False, per_host_delay=Duration(0)), guard)
        with fetcher:
            assert fetcher.fetch(outside.url("/ok")).body == b"public enough"
            for path in ("/ip", "/name"):
                with pytest.raises(FetchError, match="refused: 127.0.0.1 is a loopback address"):
                    fetcher.fetch(outside.url(path))
        assert inside.requests == []


def test_per_host_delay_spaces_requests(http_server: LocalServer) -> None:
    url = http_server.serve("/p", "x")
    with make_fetcher(per_host_delay=Duration(seconds=0.2)) as fetcher:
        started = time.monotonic()
        for _ in range(3):
            fetcher.fetch(url)
    assert time.monotonic() - started >= 0.4


def test_unsupported_scheme_and_bad_url() -> None:
    with make_fetcher() as fetcher:
        with pytest.raises(FetchError, match="only http and https"):
            fetcher.fetch("ftp://example.org/feed")
        with pytest.raises(FetchError, match="no host"):
            fetcher.fetch("http:///feed")


@pytest.mark.parametrize("url", ["http://1.2.3.999/feed", "http://example.org/a\x01b"])
def test_url_httpx_cannot_parse_is_a_fetch_error(url: str) -> None:
    with make_fetcher() as fetcher:
        with pytest.raises(FetchError, match="not a valid URL"):
            fetcher.fetch(url)


def test_connection_refused_is_one_line() -> None:
    with LocalServer() as server:
        url = server.url("/gone")
    with make_fetcher() as fetcher:
        message = fails_within_deadline(fetcher, url)
    assert message.startswith(f"{url}: cannot connect")


def test_requests_in_flight_to_one_host_are_bounded(http_server: LocalServer) -> None:
    in_flight, peak = [0], [0]
    lock = threading.Lock()

    def slow(request: RequestHandler) -> None:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        request.stopping.wait(0.2)
        with lock:
            in_flight[0] -= 1
        request.respond(200, b"ok")

    url = http_server.route("/slow", slow)
    with make_fetcher(per_host_concurrency=2, concurrency=8) as fetcher, ThreadPoolExecutor(6) as pool:
        bodies = list(pool.map(lambda _: fetcher.fetch(url).body, range(6)))
    assert bodies == [b"ok"] * 6 and peak[0] == 2


def test_requests_to_one_host_share_a_kept_alive_connection(http_server: LocalServer) -> None:
    url = http_server.serve("/page", "hello")
    with make_fetcher() as fetcher:
        for _ in range(3):
            fetcher.fetch(url)
    ports = {request.client_port for request in http_server.requests_to("/page")}
    assert len(ports) == 1


def established_to(ports: set[int]) -> int:
    """Connections of this machine in state ESTABLISHED whose remote end is one of `ports` (client sides)."""
    count = 0
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01" and int(fields[2].rsplit(":", 1)[1], 16) in ports:
            count += 1
    return count


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="counts connections from Linux's /proc/net/tcp")
def test_idle_connections_stay_bounded_across_many_hosts() -> None:
    """A daemon polling hundreds of sites must not keep a socket open to each (the open-file limit)."""
    servers = [LocalServer(f"127.0.0.{10 + number}").start() for number in range(10)]
    try:
        urls = [server.serve("/feed", "<rss/>") for server in servers]
        with make_fetcher(concurrency=3, per_host_concurrency=1) as fetcher:
            for url in urls:
                fetcher.fetch(url)
            kept = established_to({server.port for server in servers})
            again = fetcher.fetch(urls[-1])  # the most recent host's connection is one of those kept
        assert kept == 3 and again.status == 200
        assert len({request.client_port for request in servers[-1].requests_to("/feed")}) == 1
    finally:
        for server in servers:
            server.stop()


def test_concurrency_fits_the_open_file_limit(tmp_path: pathlib.Path) -> None:
    """Where the hard limit on open files is too low for `concurrency`, fewer requests run at once
    (with a warning) rather than failing with "too many open files"; a low soft limit is raised."""
    script = textwrap.dedent("""
        import resource
        from digest.config import FetchConfig
        from digest.fetch import usable_concurrency
        resource.setrlimit(resource.RLIMIT_NOFILE, (100, 300))
        print(usable_concurrency(FetchConfig(concurrency=100)), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        print(usable_concurrency(FetchConfig(concurrency=512, per_host_concurrency=2)), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    fits, capped = result.stdout.splitlines()
    assert fits == "100 292"  # 100 sockets, 32 x 4 idle ones, 64 other files: the soft limit raised to 292
    assert capped == "172 300"  # 300 - 64 idle sockets - 64 other files
    assert "concurrency = 512 needs 640 open files, and this process may open 300: 172 requests at once instead" in result.stderr


def test_a_name_lookup_that_never_answers_ends_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No local DNS server can be made to hang here, so the system lookup itself is held up."""
    release = threading.Event()
    real_lookup = socket.getaddrinfo

    def silent_dns(host: str, *args: object, **kwargs: object) -> object:
        if host.endswith(".silent.test"):
            release.wait(30)
        return real_lookup(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", silent_dns)
    try:
        with make_fetcher(allow_private=False) as fetcher:
            message = fails_within_deadline(fetcher, "http://feeds.silent.test/rss")
    finally:
        release.set()
    assert message == f"http://feeds.silent.test/rss: no complete response within {DEADLINE:g}s"


def test_ssrf_tunnelled_site_local_and_link_local_addresses_are_refused(http_server: LocalServer) -> None:
    """Issue 11 item 18: 6to4 and Teredo addresses carrying a private or loopback IPv4, and site-local
    fec0::/10, are refused before any connection; allow_private (as the tests run with) keeps link-local
    169.254.0.0/16 and fe80::/10 refused: only allow_link_local opens them."""
    teredo_loopback = "2001:0:4136:e378:8000:63bf:80ff:fffe"  # client 127.0.0.1, as Teredo stores it (inverted)
    with make_fetcher(allow_private=False) as fetcher:
        for target, words in (
            ("http://[2002:7f00:1::1]/", "6to4 address for 127.0.0.1; 127.0.0.1 is a loopback address"),
            ("http://[2002:c0a8:101::1]/", "6to4 address for 192.168.1.1; 192.168.1.1 is a private address"),
            (f"http://[{teredo_loopback}]/", "Teredo address for 127.0.0.1; 127.0.0.1 is a loopback address"),
            ("http://[fec0::1]/", "fec0::1 is a site-local address"),
        ):
            with pytest.raises(FetchError, match=r"refused: .*" + words.replace(".", r"\.")):
                fetcher.fetch(target)
    with make_fetcher(allow_private=True) as fetcher:
        assert fetcher.fetch(http_server.serve("/ok", "loopback is fine")).body == b"loopback is fine"
        for target in (
            "http://169.254.169.254/latest/meta-data/",
            "http://[fe80::1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://[2002:a9fe:a9fe::1]/",
        ):
            with pytest.raises(FetchError, match=r"link-local address \(set \[fetch\] allow_link_local = true to allow\)"):
                fetcher.fetch(target)
    guard = AddressGuard(allow_link_local=True)
    assert guard.refusal(ipaddress.ip_address("169.254.169.254")) is None
    assert "loopback" in (guard.refusal(ipaddress.ip_address("127.0.0.1")) or "")
    assert http_server.requests_to("/ok") and len(http_server.requests) == 1


def test_allow_link_local_is_a_config_key_that_opens_only_link_local(project: Project) -> None:
    """Issue 11 item 18, through the real CLI: with allow_private = true a feed at the cloud metadata address
    fails in one line naming allow_link_local, and no request leaves."""
    project.write_config("""
        [fetch]
        allow_private = true
        timeout = "2s"

        [[sources]]
        name = "metadata"
        type = "feed"
        url = "http://169.254.169.254/latest/meta-data/"

        [[digests]]
        name = "daily"
        output_dir = "../out"
        """)
    result = invoke(project, "run", "--json")
    assert result.returncode == 1, result.stderr
    error = json.loads(result.stdout)["sources"][0]["error"]
    assert error == (
        "http://169.254.169.254/latest/meta-data/: refused: 169.254.169.254 is a link-local address "
        "(set [fetch] allow_link_local = true to allow)"
    )
    project.write_config(
        project.config.read_text().replace("allow_private = true", "allow_private = true\nallow_link_local = true")
    )
    assert invoke(project, "check").returncode == 0
