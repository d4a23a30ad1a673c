"""Search across editions (`digest search`, and `/DIGEST/search` under `digest serve`): every stored
article by the words of its title, summary or text (while kept), best first, with the editions it was in.

A query is data. It is split here into words (letters and digits; quotes, `*`, `(`, `;`, `-` and
everything else only separate them) and the store matches each word as plain text, all of them
required, never as SQL or as its full-text engine's query syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from digest.archive import page_names
from digest.config import Config, DigestConfig
from digest.deliver import safe_name
from digest.errors import QueryError, RenderError, StoreError
from digest.models import Endpoint, SearchHit, WebReply, WebRequest
from digest.render import http_url, renderer_for
from digest.store import Store, open_store

MAX_QUERY = 1000  # characters: more is not a query a reader typed
MAX_WORDS = 32
DEFAULT_LIMIT = 20
WEB_LIMIT = 50
TEMPLATE = "search.html"  # the results page under `digest serve`, overridable from the digest's `templates`
_WORD = re.compile(r"[^\W_]+")  # letters and digits, as SQLite's unicode61 tokenizer reads words


def query_words(query: str) -> tuple[str, ...]:
    """The words to look for, each once; QueryError when there are none or the query is too long."""
    if len(query) > MAX_QUERY:
        raise QueryError(f"the query is {len(query):,} characters long; at most {MAX_QUERY:,}")
    words = tuple(dict.fromkeys(word.casefold() for word in _WORD.findall(query)))
    if not words:
        raise QueryError("the query has no words to look for (letters or digits)")
    if len(words) > MAX_WORDS:
        raise QueryError(f"the query has {len(words)} words; at most {MAX_WORDS}")
    return words


def parse_since(text: str) -> datetime:
    """A date (YYYY-MM-DD) or ISO 8601 time; one without a zone is UTC. QueryError when it is neither."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise QueryError(f"since: not a date (YYYY-MM-DD) or ISO 8601 time: {text[:40]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def search(
    store: Store, query: str, digest: str | None = None, since: datetime | None = None, limit: int = DEFAULT_LIMIT
) -> list[SearchHit]:
    """The best `limit` articles holding every word of `query`, best first, with their editions."""
    return store.search(query_words(query), digest, since, limit)


@dataclass(frozen=True)
class Pages:
    """Where each edition of the digests with an archive has its page: (digest, path in its folder)."""

    paths: dict[int, tuple[str, str]]

    @classmethod
    def of(cls, store: Store, config: Config, hits: list[SearchHit]) -> Pages:
        """The pages of the editions these hits appeared in (archived digests only)."""
        wanted = {ref.digest for hit in hits for ref in hit.editions}
        paths: dict[int, tuple[str, str]] = {}
        for digest in config.digests:
            if digest.name in wanted and digest.output_dir is not None and digest.archive:
                paths.update(
                    (edition_id, (digest.name, page))
                    for edition_id, page in page_names(store.edition_listing(digest.name, 0)).items()
                )
        return cls(paths)

    def page(self, edition_id: int) -> str | None:
        """The edition's page, relative to its digest's archive folder; None when it has none."""
        found = self.paths.get(edition_id)
        return found[1] if found else None


def hit_document(hit: SearchHit, pages: Pages) -> dict[str, Any]:
    """One result as `digest search --json` prints it (README, "Search")."""
    article = hit.article
    return {
        "title": article.title,
        "source": article.source,
        "link": http_url(article.url) or None,
        "published": article.published.isoformat() if article.published else None,
        "excerpt": hit.excerpt,
        "rank": hit.rank,
        "editions": [
            {"digest": ref.digest, "edition": ref.id, "created": ref.created.isoformat(), "page": pages.page(ref.id)}
            for ref in hit.editions
        ],
    }


def endpoints(config: Config) -> list[Endpoint]:
    """`/DIGEST/search?q=WORDS[&since=DATE]` for each digest with an archive: results among its editions."""
    digests = {safe_name(d.name): d for d in config.digests if d.output_dir is not None and d.archive}

    def handle(request: WebRequest) -> WebReply:
        digest = digests.get(request.path_params.get("digest", ""))
        if digest is None:
            return WebReply(404, "no such digest\n", "text/plain; charset=utf-8")
        return results_page(config, digest, request.query.get("q", ""), request.query.get("since", ""))

    return [Endpoint("/{digest}/search", ("GET", "HEAD"), handle)]


def results_page(config: Config, digest: DigestConfig, query: str, since_text: str) -> WebReply:
    """The search page of one digest's archive: the form, then the results or one line saying what is wrong."""
    zone = ZoneInfo(digest.timezone)
    context: dict[str, Any] = {
        "digest": {"name": digest.name, "timezone": digest.timezone},
        "query": query,
        "since": since_text,
        "error": "",
        "results": [],
        "searched": bool(query.strip()),
    }
    status = 200
    if context["searched"]:
        try:
            since = parse_since(since_text) if since_text.strip() else None
            words = query_words(query)
            store = open_store(config.store, timeout=2.0)
            try:
                hits = store.search(words, digest.name, since, WEB_LIMIT)
                pages = Pages.of(store, config, hits)
            finally:
                store.close()
            context["results"] = [_web_result(hit, pages, digest.name, zone) for hit in hits]
        except QueryError as error:
            status, context["error"] = 400, str(error)
        except StoreError as error:
            status, context["error"] = 503, f"the store cannot be read now: {error}"
    try:
        body = renderer_for(digest.templates).render(TEMPLATE, context)
    except RenderError as error:
        return WebReply(500, f"{error}\n", "text/plain; charset=utf-8")
    return WebReply(status, body)


def _web_result(hit: SearchHit, pages: Pages, digest: str, zone: ZoneInfo) -> dict[str, Any]:
    article = hit.article
    when = article.published or article.fetched
    return {
        "title": article.title,
        "link": http_url(article.url),
        "source": article.source,
        "date": when.astimezone(zone).strftime("%Y-%m-%d"),
        "excerpt": hit.excerpt,
        "editions": [
            {"label": ref.created.astimezone(zone).strftime("%Y-%m-%d %H:%M"), "href": pages.page(ref.id) or ""}
            for ref in hit.editions
            if ref.digest == digest
        ],
    }
