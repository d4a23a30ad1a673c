"""What the `feed` and `page` sources share: conditional GETs, a page fetched and its
main text extracted, and canonical links. Kept apart from feed.py so that a config
with page sources only never loads feedparser."""

from __future__ import annotations

from digest.errors import ExtractError
from digest.extract import Extracted, from_html
from digest.fetch import Fetcher, Response
from digest.sanitise import TRACKING, clean_url, without_parameters
from digest.sources import PollContext

PAGE_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"


def _fetcher(context: PollContext) -> Fetcher:
    """The run's fetcher: the pipeline gives one to every source of a type in NETWORK_SOURCES."""
    if context.fetcher is None:
        raise RuntimeError("a network source was polled without a fetcher")
    return context.fetcher


def fetch_if_changed(context: PollContext, url: str, accept: str) -> Response:
    """GET `url`, sending the ETag / Last-Modified the memo holds from the last poll."""
    return _fetcher(context).fetch(
        url, etag=context.memo.get("etag"), last_modified=context.memo.get("last_modified"), accept=accept
    )


def remember_validators(context: PollContext, response: Response) -> None:
    """Keep the response's ETag / Last-Modified in the memo for the next poll."""
    for name in ("etag", "last_modified"):
        value = getattr(response, name)
        if value:
            context.memo[name] = value
        else:
            context.memo.pop(name, None)


def canonical_link(link: str | None, base: str | None = None) -> str | None:
    """An http(s) link without tracking parameters (utm_* and the like), its `#fragment` kept:
    entries that differ only by it (a comments feed's `#comment-N`) are different entries."""
    url = clean_url(link, base)
    return without_parameters(url, TRACKING, keep_fragment=True) if url else None


def fetch_page(context: PollContext, url: str, *, conditional: bool = False) -> tuple[Response, Extracted | None]:
    """Fetch a web page and extract its main text (None on a 304); ExtractError names the URL."""
    if conditional:
        memo = context.memo
        response = _fetcher(context).fetch(
            url, etag=memo.get("etag"), last_modified=memo.get("last_modified"), accept=PAGE_ACCEPT, robots=True
        )
    else:
        response = _fetcher(context).fetch(url, accept=PAGE_ACCEPT, robots=True)
    if response.not_modified:
        return response, None
    try:
        with context.working():
            return response, from_html(response.body, response.url, fallback_title="")
    except ExtractError as error:
        raise ExtractError(f"{response.url}: {error}") from None
