"""Articles stored before their summary (`digest worker`'s polls): summarised later, a batch at a time.

A poll stores what is new at once and leaves the CPU-bound summaries to summary tasks, which any
worker process takes; each task summarises a batch of BATCH articles, so the queue's cost per article
(a job row, its locks, a store connection) stays small beside the summarising. An article is
summarised once: a second try of the same batch (a task retried after its worker died) finds it done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta

from digest.config import SummaryConfig
from digest.models import Summary
from digest.store import Store

log = logging.getLogger("digest.pending")

# Articles per summary task: ~0.1 s of summarising on one core, against a few ms of queue work.
BATCH = 25
# An article still waiting this long after it was stored lost its task (its worker died between
# storing it and deferring the task): it is deferred again (digest.worker's summary sweep).
OVERDUE = timedelta(minutes=5)

# digest.pipeline.summarise_and_describe and digest.summarise.resolve_language, handed in by the pipeline
Summarise = Callable[[str, SummaryConfig, str, "str | None"], tuple[Summary, str]]
ResolveLanguage = Callable[[str, str, "str | None"], str]


@dataclass(frozen=True)
class SummaryReport:
    """What one summary task did: articles summarised, and those it found summarised already."""

    summarised: int
    done_before: int


def batches(ids: Sequence[int], size: int = BATCH) -> Iterator[list[int]]:
    """`ids` in consecutive batches of at most `size`."""
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def summarise_stored(
    store: Store, settings: SummaryConfig, ids: Sequence[int], summarise: Summarise, resolve_language: ResolveLanguage
) -> SummaryReport:
    """Summarise those of the articles `ids` still waiting and store each summary with its story features,
    all in one transaction at the end (no lock is held while summarising). An article whose summariser
    fails gets an empty summary with a note saying why, so that it still reaches its editions."""
    waiting = store.awaiting_summary(ids)
    made: list[tuple[int, Summary, str]] = []
    for article_id, article in waiting:
        try:
            language = resolve_language(article.body, settings.language, article.language)
            summary, features = summarise(article.body, settings, article.title, language)
        except Exception as error:  # a bug on one article must not hold back the batch, nor retry forever
            log.error("article %d (%s): summary failed: %r", article_id, article.identity, error)
            note = f"summary failed: {type(error).__name__}: {error}"
            summary, features = Summary((), "none", article.language or "", note), ""
        made.append((article_id, summary, features))
    with store.transaction():
        summarised = sum(store.set_summary(article_id, summary, features) for article_id, summary, features in made)
    return SummaryReport(summarised, len(ids) - summarised)
