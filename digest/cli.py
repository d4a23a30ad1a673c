"""The command line: the only module that parses arguments, sets up logging and
turns errors into one-line messages and exit codes.

Exit codes: 0 done; 1 done, but some sources or deliveries failed; 2 usage or
config error; 3 could not run at all (store locked or unusable).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from digest import __version__
from digest.errors import ConfigError, DeliveryError, DigestError, ListenError, StoreError
from digest.memory import one_blas_thread

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_CANNOT_RUN = 0, 1, 2, 3
Result = TypeVar("Result")
NOW_YEARS = (1970, 9000)  # the years $DIGEST_NOW may pin


def now() -> datetime:
    """The current time; $DIGEST_NOW (ISO 8601) pins it for reproducible output and tests."""
    pinned = os.environ.get("DIGEST_NOW")
    if pinned:
        try:
            moment = datetime.fromisoformat(pinned)
        except ValueError:
            fail(EXIT_USAGE, f"DIGEST_NOW: not an ISO 8601 time: {pinned!r}")
        moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
        # Schedules, backfill windows and retries reach days and years either side of now.
        if not NOW_YEARS[0] <= moment.year <= NOW_YEARS[1]:
            fail(EXIT_USAGE, f"DIGEST_NOW: {pinned!r} is out of range: the year must be from {NOW_YEARS[0]} to {NOW_YEARS[1]}")
        return moment
    return datetime.now(timezone.utc)


def _articles(count: int) -> str:
    """A count of articles in words ("1 article", "3 articles") for one-line reports."""
    return f"{count} article{'' if count == 1 else 's'}"


def fail(code: int, message: str) -> NoReturn:
    """Print one line on stderr and exit."""
    click.echo(f"digest: {message}", err=True)
    sys.exit(code)


def guarded(action: Callable[[], Result]) -> Result:
    """Run `action`, turning the project's errors into one line and an exit code."""
    try:
        return action()
    except ConfigError as error:
        fail(EXIT_USAGE, f"config error: {error}")
    except (StoreError, ListenError) as error:
        fail(EXIT_CANNOT_RUN, str(error))
    except DigestError as error:
        fail(EXIT_PARTIAL, str(error))
    except KeyboardInterrupt:
        fail(130, "interrupted")
    except Exception as error:
        if os.environ.get("DIGEST_DEBUG"):
            raise
        fail(EXIT_PARTIAL, f"internal error: {type(error).__name__}: {error} (set DIGEST_DEBUG=1 for the traceback)")


def load_config(context: click.Context, required: bool = True) -> Any:
    """The config named by --config, $DIGEST_CONFIG or config/digest.toml."""
    from digest import config

    path = config.locate(context.obj["config"])
    if not required and not path.exists():
        return None
    return guarded(lambda: config.load(path))


@contextmanager
def article_progress(enabled: bool) -> Iterator[Callable[[str], None] | None]:
    """A rich progress line counting stored articles, only on a terminal."""
    if not enabled:
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed} new articles"),
        TimeElapsedColumn(),
        transient=True,
    ) as progress:
        task = progress.add_task("polling", total=None)

        def advance(source: str) -> None:
            progress.update(task, advance=1, description=f"polling {source}")

        yield advance


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="PATH", help="Config file [default: $DIGEST_CONFIG, else config/digest.toml].")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    help="Log detail on stderr [default: info for daemon, else warning].",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines as text, or as one JSON object each for machines.",
)
@click.version_option(__version__, prog_name="digest")
@click.pass_context
def main(context: click.Context, config_path: str | None, log_level: str | None, log_format: str) -> None:
    """Summarise news from feeds, pages and files into one digest, offline.

    \b
    Example:
      digest run                    # poll, summarise, write/send one edition
      digest --config my.toml preview --format txt
    """
    one_blas_thread()  # before any command loads numpy; worker processes inherit it
    context.ensure_object(dict)
    context.obj["config"] = config_path
    level = log_level or ("info" if context.invoked_subcommand == "daemon" else "warning")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonLogFormatter() if log_format == "json" else logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    )
    logging.basicConfig(level=level.upper(), handlers=[handler])


_LOG_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonLogFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _LOG_RECORD_FIELDS})
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


@main.command()
@click.option("--digest", "digest_name", metavar="NAME", help="Only this digest (and its sources).")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON on stdout.")
@click.pass_context
def run(context: click.Context, digest_name: str | None, as_json: bool) -> None:
    """Poll every source once, then make and deliver one edition of each digest now.

    \b
    Example:
      digest run --digest daily --json
    """
    config = load_config(context)
    from digest import pipeline

    with article_progress(sys.stderr.isatty() and not as_json) as progress:
        report = guarded(lambda: pipeline.run(config, now(), digest_name, progress))
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2, default=str))
    else:
        for source in report.sources:
            line = f"source {source.name}: {source.outcome()}"
            if source.waiting_until and not source.error:
                line = f"source {source.name}: not polled, its server asked to wait until {source.waiting_until}"
            click.echo(line + (f"; failed: {source.error}" if source.error else ""))
            for note in source.notes:
                click.echo(f"source {source.name}: note: {note}")
        for edition in report.editions:
            if edition.subscribers:
                readers = f"{edition.subscribers} subscriber(s) due {edition.due}"
                made = f"new edition with {_articles(edition.articles)}" if edition.made else "nothing new for them"
                click.echo(f"digest {edition.digest} for {readers}: {made}")
            elif edition.made:
                waiting = f" ({edition.waiting} wait for the next)" if edition.waiting else ""
                click.echo(f"digest {edition.digest}: new edition with {_articles(edition.articles)}{waiting}")
            else:
                click.echo(f"digest {edition.digest}: nothing new, no edition made")
        for delivery in report.deliveries:
            where = delivery.to or delivery.recipient
            error = f": {delivery.error}" if delivery.error else ""
            click.echo(f"delivery {delivery.digest} ({delivery.channel}) to {where}: {delivery.status}{error}")
    sys.exit(EXIT_PARTIAL if report.failed else EXIT_OK)


@main.command()
@click.option("--digest", "digest_name", metavar="NAME", help="Only this digest.")
@click.option("--format", "fmt", type=click.Choice(["html", "md", "txt", "json"]), default="txt", show_default=True)
@click.pass_context
def preview(context: click.Context, digest_name: str | None, fmt: str) -> None:
    """Render what the next edition would hold, to stdout, changing no state.

    \b
    Example:
      digest preview --format md > next.md
    """
    config = load_config(context)
    from digest import pipeline

    documents = guarded(lambda: pipeline.preview(config, now(), digest_name, fmt))
    for name, document in documents:
        if document is None:
            click.echo(f"digest {name}: nothing new for the next edition", err=True)
        else:
            click.echo(document, nl=False)


@main.command()
@click.argument("document", required=False, default="-", metavar="[PATH|URL|-]")
@click.option(
    "--jsonl",
    "jsonl",
    type=click.Path(dir_okay=False, allow_dash=True),
    metavar="FILE",
    help='Summarise lines {"id","text"[,"title"]}; print lines {"id","summary":[...]}.',
)
@click.option("--sentences", type=click.IntRange(1, 50), help="Sentences per summary [default: from config, else 3].")
@click.option("--algorithm", help="Summariser [default: from config].")
@click.pass_context
def summarize(context: click.Context, document: str, jsonl: str | None, sentences: int | None, algorithm: str | None) -> None:
    """Summarise one document (a file, a URL or stdin) to stdout, one sentence a line.

    Works without a config file (defaults are used).

    \b
    Examples:
      digest summarize seeds/000_1d6f88b92810c2ea.txt
      cat article.txt | digest summarize -
      digest summarize --jsonl articles.jsonl > summaries.jsonl
    """
    from dataclasses import replace

    from digest.config import SummaryConfig

    config = load_config(context, required=False)
    settings = config.summary if config else SummaryConfig()
    changes = {k: v for k, v in {"sentences": sentences, "algorithm": algorithm}.items() if v is not None}
    settings = _checked_summary(replace(settings, **changes))  # click turns BadParameter into a usage error (exit 2)
    if jsonl:
        if guarded(lambda: _summarize_jsonl(jsonl, settings)):
            sys.exit(EXIT_PARTIAL)
        return
    title, text, language = guarded(lambda: _read_document(document, config))
    from digest.summarise import summarise

    summary = guarded(lambda: summarise(text, settings, title=title, language=language))
    for sentence in summary.sentences:
        click.echo(sentence)


def _checked_summary(settings: Any) -> Any:
    from digest.config import ALGORITHMS

    if settings.algorithm not in ALGORITHMS:
        raise click.BadParameter(
            f"unknown algorithm {settings.algorithm!r}; choose one of {', '.join(ALGORITHMS)}", param_hint="--algorithm"
        )
    return settings


def _read_document(document: str, config: Any) -> tuple[str, str, str | None]:
    """(title, body, language) of a path, a URL or stdin."""
    from digest import extract
    from digest.errors import ExtractError

    if document == "-":
        found = extract.from_text(sys.stdin.read(), "stdin")
    elif document.startswith(("http://", "https://")):
        from digest.config import FetchConfig
        from digest.fetch import Fetcher
        from digest.sources import PollContext
        from digest.sources.web import fetch_page

        with Fetcher(config.fetch if config else FetchConfig()) as fetcher:
            _, page = fetch_page(PollContext(now=now(), first_poll=True, fetcher=fetcher), document)
        assert page is not None  # only a conditional fetch can answer "not modified"
        found = page
    else:
        path = Path(document)
        try:
            raw = path.read_text(encoding="utf-8", errors="replace")
        except OSError as error:
            raise ExtractError(f"{document}: cannot read: {error.strerror or error}") from None
        found = extract.from_document(raw, path.suffix, path.stem)
    return found.title, found.body, found.language


def _summarize_jsonl(source: str, settings: Any) -> int:
    """Summarise each line of a JSONL file to stdout; a bad line is one stderr line (file:line)
    and the rest go on. Returns how many lines were bad."""
    from digest.errors import ExtractError, SummariseError
    from digest.summarise import summarise

    try:
        stream = sys.stdin.buffer if source == "-" else open(source, "rb")
    except OSError as error:
        raise ExtractError(f"{source}: cannot read: {error.strerror or error}") from None
    bad = 0
    with stream:
        for number, raw in enumerate(stream, start=1):
            try:
                line = raw.decode("utf-8")
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    identifier, text, title = record["id"], record["text"], record.get("title") or ""
                    if not isinstance(text, str) or not isinstance(title, str):
                        raise TypeError("text and title must be strings")
                except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
                    raise ExtractError('expected a JSON object with "id" and "text"') from None
                summary = summarise(text, settings, title=title)
            except UnicodeDecodeError:
                problem = "not UTF-8 text"
            except (ExtractError, SummariseError) as error:
                problem = str(error)
            else:
                click.echo(json.dumps({"id": identifier, "summary": list(summary.sentences)}, ensure_ascii=False))
                continue
            bad += 1
            click.echo(f"digest: {'stdin' if source == '-' else source}:{number}: {problem}", err=True)
    return bad


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True), metavar="FILE.jsonl")
@click.option(
    "--window",
    default="72h",
    show_default=True,
    metavar="DURATION",
    help='Articles published further apart are never one story ("72h", "2d").',
)
def stories(file: str, window: str) -> None:
    """Group articles by story: reads lines {"id","title","text"[,"published"]}, writes lines
    {"id","story"} in input order; the same story label means the same story.

    Works without a config file. "published" is an ISO 8601 time; lines without one
    are grouped whatever their time. A bad line is named on stderr and left out (exit 1).

    \b
    Example:
      digest stories articles.jsonl > stories.jsonl
    """
    from digest.config import parse_duration

    try:
        span = parse_duration(window)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--window") from None
    bad = guarded(lambda: _stories_jsonl(file, span))
    if bad:
        sys.exit(EXIT_PARTIAL)


def _stories_jsonl(source: str, window: Any) -> int:
    """Group the lines of a JSONL file and print each one's story; returns how many lines were bad."""
    from digest import stories
    from digest.errors import ExtractError

    try:
        stream = sys.stdin.buffer if source == "-" else open(source, "rb")
    except OSError as error:
        raise ExtractError(f"{source}: cannot read: {error.strerror or error}") from None
    identifiers: list[Any] = []
    items: list[stories.Item] = []
    bad = 0
    with stream:
        for number, raw in enumerate(stream, start=1):
            try:
                line = raw.decode("utf-8")
                if not line.strip():
                    continue
                record = json.loads(line)
                identifier, text, title = record["id"], record["text"], record.get("title") or ""
                published = _published(record.get("published"))
                if not isinstance(text, str) or not isinstance(title, str):
                    raise TypeError
            except UnicodeDecodeError:
                problem = "not UTF-8 text"
            except ValueError as error:
                problem = str(error) if str(error).startswith("published") else 'expected a JSON object with "id" and "text"'
            except (KeyError, TypeError, AttributeError, RecursionError):
                problem = 'expected a JSON object with "id" and "text"'
            else:
                identifiers.append(identifier)
                items.append(stories.Item(stories.features(title, text), published))
                continue
            bad += 1
            click.echo(f"digest: {'stdin' if source == '-' else source}:{number}: {problem}", err=True)
    labels = stories.group(items, stories.Settings(window=window))
    for identifier, label in zip(identifiers, labels):
        click.echo(json.dumps({"id": identifier, "story": label}, ensure_ascii=False))
    return bad


def _published(value: Any) -> datetime | None:
    """A line's "published" time (ISO 8601; UTC when it names no zone), or None when absent."""
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"published: not an ISO 8601 time: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@main.command(name="eval")
@click.argument("file", type=click.Path(exists=True, dir_okay=False), metavar="FILE.jsonl")
@click.option(
    "--stories", "stories_file", is_flag=True, help='Measure story grouping instead, on lines {"id","title","text","story"}.'
)
@click.option("--algorithms", metavar="A,B,...", help="Summarisers to measure, comma-separated [default: all].")
@click.option("--sentences", type=click.IntRange(1, 50), default=3, show_default=True, help="Sentences per summary.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_context
def eval_command(
    context: click.Context, file: str, stories_file: bool, algorithms: str | None, sentences: int, as_json: bool
) -> None:
    """ROUGE-1/2/Lsum F1 and speed of each summariser on articles with reference summaries.

    FILE.jsonl holds lines {"id","text","summary"[,"title"]}, reference sentences separated
    by newlines. Each algorithm is compared with Lead-3 (95% bootstrap interval).
    Needs the optional extra: pip install "digest[eval]".

    With --stories: B-cubed and pairwise precision/recall of story grouping on lines
    {"id","title","text","story"}, beside the tf-idf complete-link baseline, on the
    unseen fold (even topic numbers), the tuning fold and the whole file.

    \b
    Examples:
      digest eval ../shared/data/cnndm-dev.jsonl --algorithms news,lead,lexrank
      digest eval --stories ../shared/data/ecb-dev.jsonl
    """
    if stories_file:
        from digest import story_eval

        grouping = guarded(lambda: story_eval.evaluate(Path(file)))
        click.echo(json.dumps(grouping, indent=2) if as_json else story_eval.format_report(grouping))
        return
    from digest.config import ALGORITHMS, SummaryConfig

    config = load_config(context, required=False)
    language = (config.summary if config else SummaryConfig()).language
    chosen = [name.strip() for name in (algorithms or ",".join(ALGORITHMS)).split(",") if name.strip()]
    unknown = [name for name in chosen if name not in ALGORITHMS]
    if unknown or not chosen:
        raise click.BadParameter(
            f"unknown algorithm {', '.join(unknown) or '(none given)'}; choose from {', '.join(ALGORITHMS)}",
            param_hint="--algorithms",
        )
    from digest import evaluate

    def progress(algorithm: str, articles: int) -> None:
        if sys.stderr.isatty():
            click.echo(f"{algorithm}: {articles} articles done", err=True)

    def measure() -> Any:
        examples = evaluate.load_examples(Path(file))
        return evaluate.evaluate(examples, chosen, sentences=sentences, language=language, file=file, progress=progress)

    report = guarded(measure)
    click.echo(json.dumps(report.as_json(), indent=2) if as_json else evaluate.format_report(report))


@main.command()
@click.option("--smtp", "smtp", is_flag=True, help="Also connect to the [smtp] server, start TLS and log in; sends nothing.")
@click.pass_context
def check(context: click.Context, smtp: bool) -> None:
    """Validate the config and say what is enabled, without doing anything.

    \b
    Examples:
      digest --config config/digest.toml check
      digest check --smtp          # can we reach and log in to the mail server?
    """
    config = load_config(context)
    from digest import pipeline

    guarded(lambda: pipeline.check_templates(config))
    click.echo(f"config {config.path}: valid, templates compile")
    click.echo(f"store: {config.store.where}")
    click.echo(f"summary: {config.summary.algorithm}, {config.summary.sentences} sentences, language {config.summary.language}")
    from digest.mailaddress import has_random_part

    for source in config.sources:
        where = getattr(source, "path", None) or getattr(source, "url", None) or getattr(source, "address", "")
        click.echo(f"source {source.name}: {source.type} {where}")
        if source.type == "mailbox" and not has_random_part(source.address):
            click.echo(
                f"digest: warning: source {source.name}: address {source.address} has no random part, so anyone can guess it "
                f"and send mail to it; `digest sources add-mailbox {source.name}` suggests one",
                err=True,
            )
    for source in config.sources:
        if not config.digests_of(source.name):
            click.echo(
                f"digest: warning: source {source.name} is in no digest's sources, so its articles are shown "
                "nowhere; add it to a digest's sources, or leave a digest's sources out to take every source",
                err=True,
            )
    if any(source.type == "mailbox" for source in config.sources):
        inbound = config.inbound
        places = [f"SMTP on {inbound.listen}"] if inbound.listen else []
        places += [f"LMTP on {inbound.lmtp}"] if inbound.lmtp else []
        tls = ", STARTTLS" if inbound.tls_cert else ""
        click.echo(
            f"inbound: {' and '.join(places) or 'nowhere (set listen or lmtp)'}{tls}, up to {inbound.max_bytes} bytes a message"
        )
    for digest in config.digests:
        outputs = []
        if digest.output_dir:
            outputs.append(f"files in {digest.output_dir} ({', '.join(digest.formats)})")
            if digest.archive:
                address = f"at {digest.base_url}" if digest.base_url else "with relative links (no base_url)"
                outputs.append(f"archive and Atom feed of the last {digest.feed_size} editions {address}")
        if digest.email_to:
            outputs.append(f"email to {len(digest.email_to)} recipient(s)")
        click.echo(
            f"digest {digest.name}: schedule {digest.schedule!r} {digest.timezone}, "
            f"up to {digest.max_articles} articles; {'; '.join(outputs) or 'no output configured'}"
        )
    if smtp or any(digest.email_to for digest in config.digests):
        server = config.smtp
        login = "no login"
        if server.username:
            login = f"login {server.username} (password from ${server.password_env}: {'set' if server.password else 'NOT SET'})"
        click.echo(f"smtp: {server.host}:{server.port}, security {server.security}, {login}, from {server.from_}")
    if smtp:
        _check_dkim(config.smtp)
        from digest.smtp import check_server

        try:
            steps = check_server(config.smtp)
        except DeliveryError as error:
            fail(EXIT_PARTIAL, f"smtp check failed: {error}")
        for step in steps:
            click.echo(f"smtp: {step}")
        click.echo("smtp: ok (nothing sent)")


def _check_dkim(server: Any) -> None:
    """Say whether outgoing mail is signed and print the DNS TXT record its key needs."""
    if server.dkim_key_file is None:
        click.echo("dkim: not set up, mail is sent unsigned (set [smtp] dkim_key_file and dkim_selector to sign it)")
        return
    from digest.signing import Signer

    try:
        signer = Signer.load(server.dkim_key_file, server.dkim_selector, server.signing_domain)
    except DeliveryError as error:
        fail(EXIT_USAGE, f"config error: smtp.dkim_key_file: {error}")
    record = signer.dns_record
    chunks = " ".join(f'"{record[i : i + 250]}"' for i in range(0, len(record), 250))
    click.echo(f"dkim: signing as d={signer.domain} s={signer.selector} (relaxed/relaxed, rsa-sha256); publish this TXT record:")
    click.echo(f"{signer.dns_name}. IN TXT ( {chunks} )")


@main.command()
@click.pass_context
def daemon(context: click.Context) -> None:
    """Run in the foreground: poll sources, make editions on schedule, retry deliveries.

    One daemon per store (a second exits 3). SIGTERM or SIGINT stops it cleanly;
    SIGHUP reloads the config. One log line per job on stderr. Uses the real
    clock ($DIGEST_NOW is ignored).

    \b
    Example:
      digest --log-format json daemon
    """
    config = load_config(context)
    from digest import jobs, pipeline
    from digest.scheduler import Daemon

    guarded(lambda: pipeline.check_templates(config))
    guarded(lambda: jobs.check_store(config))
    sys.exit(guarded(lambda: Daemon(config).run()))


@main.command()
@click.option(
    "--concurrency",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Tasks this worker runs at once (start one worker process per core for summarising).",
)
@click.option(
    "--lease",
    default=600,
    show_default=True,
    type=click.IntRange(5, 86400),
    metavar="SECONDS",
    help="How long a delivery stays claimed by this worker; a dead worker's claims are taken over after it.",
)
@click.pass_context
def worker(context: click.Context, concurrency: int, lease: int) -> None:
    """Do the daemon's work as one of any number of processes sharing a PostgreSQL store ([store] url):
    polls, editions (each slot once), deliveries (each email once). SIGTERM or SIGINT lets running
    tasks finish, then exits. Uses the real clock ($DIGEST_NOW is ignored).

    \b
    Example:
      digest worker --concurrency 4
    """
    config = load_config(context)
    from digest import pipeline, worker as worker_module

    if not config.store.url:
        fail(EXIT_USAGE, f"config error: {config.path}: store.url: digest worker needs a PostgreSQL store (set [store] url)")
    guarded(lambda: pipeline.check_templates(config))
    guarded(lambda: worker_module.run(config, concurrency, timedelta(seconds=lease)))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.pass_context
def status(context: click.Context, as_json: bool) -> None:
    """Show sources (last and next poll, errors), digests (last and next edition), the outbox.

    \b
    Example:
      digest status --json
    """
    config = load_config(context)
    from digest import jobs, scheduler
    from digest.store import open_store

    moment = now()

    def when(iso: str) -> str:
        return "due now" if datetime.fromisoformat(iso) <= moment else iso

    def gather() -> dict[str, Any]:
        if not config.store.exists():  # status only reads: the first run or daemon makes the store
            return _status_report(config, None, scheduler.upcoming(config, jobs.History({}, {}), moment))
        store = open_store(config.store)
        try:
            return _status_report(config, store, scheduler.upcoming(config, jobs.read_history(config, store), moment))
        finally:
            store.close()

    report = guarded(gather)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    daemon = report["daemon"]
    click.echo(
        f"daemon: running, PID {daemon['pid']}" if daemon["running"] else "daemon: not running (next times apply once it runs)"
    )
    if not report["store"]["exists"]:
        click.echo(f"store: none yet at {report['store']['path']} (the first `digest run` or `digest daemon` makes it)")
    click.echo(f"articles stored: {report['articles']}")
    kept = report["store"]
    if kept["exists"]:
        click.echo(
            f"store: {kept['bytes'] / 1e6:.1f} MB on disk, {kept['articles_with_text']} of {kept['articles']} articles "
            f"with their text (text kept {kept['keep']})"
        )
    for source in report["sources"]:
        health = f"failing ({source['failures']}x): {source['last_error']}" if source["failures"] else "ok"
        success = f", last success {source['last_success'] or 'never'}" if source["failures"] else ""
        waiting = f"; next poll not before {source['next_poll_not_before']}" if source["next_poll_not_before"] else ""
        click.echo(
            f"source {source['name']} ({source['type']}): last poll {source['last_poll'] or 'never'}{success}, "
            f"next poll {when(source['next_poll'])}; {health}{waiting}"
        )
        if "inbound" in source:
            mail = source["inbound"]
            refused = ", ".join(f"{count} {reason}" for reason, count in mail["refused"].items()) or "none"
            click.echo(
                f"  mail: {mail['accepted']} accepted ({mail['duplicates']} duplicates kept once), refused: {refused}, "
                f"deferred (store unavailable): {mail['deferred']}, last received {mail['last_received'] or 'never'}"
            )
    if "inbound" in report:
        click.echo(f"inbound: {report['inbound']['unknown_recipient']} refused for an unknown address")
    for digest in report["digests"]:
        click.echo(
            f"digest {digest['name']}: {digest['editions']} editions, last {digest['last_edition'] or 'never'}, "
            f"next {when(digest['next_edition'])} ({digest['schedule']!r} {digest['timezone']})"
        )
    if "workers" in report:
        queue = report["workers"]
        for entry in queue.get("workers", []):
            state = "alive" if entry["alive"] else "gone"
            click.echo(
                f"worker {entry['id']} ({entry['host']}, PID {entry['pid']}): {state}, last heartbeat "
                f"{entry['last_heartbeat'] or 'none'}, tasks done {entry['done']}, failed {entry['failed']}"
            )
        depths = ", ".join(f"{row['count']} {row['task']} {row['status']}" for row in queue.get("queue", [])) or "empty"
        click.echo(f"queue: {depths}" if queue else "queue: no worker has run yet")
        for job in queue.get("stalled", []):
            click.echo(f"stalled: job {job['id']} {job['task']} {job['args']} (its worker stopped; the next tick puts it back)")
    if not report["outbox"]:
        click.echo("outbox: nothing pending or failed")
    for row in report["outbox"]:
        retry = f", next try {row['next_attempt']}" if row["next_attempt"] else ""
        click.echo(
            f"outbox {row['status']}: {row['digest']} {row['channel']} to {row['recipient']} "
            f"after {row['attempts']} attempt(s): {row['last_error']}{retry}"
        )


def _status_report(config: Any, store: Any, coming: dict[str, dict[str, datetime]]) -> dict[str, Any]:
    """What `digest status` shows, from an open store (None when there is no store yet)."""
    from digest import lock

    states = {state.name: state for state in store.source_states()} if store else {}
    received = store.inbound_counts() if store else {}
    sources = []
    for source in config.sources:
        state = states.get(source.name)
        sources.append(
            {
                "name": source.name,
                "type": source.type,
                "last_poll": state.last_poll.isoformat() if state and state.last_poll else None,
                "last_success": state.last_success.isoformat() if state and state.last_success else None,
                "failures": state.failures if state else 0,
                "last_error": state.last_error if state else "",
                "next_poll_not_before": state.not_before.isoformat() if state and state.not_before else None,
                "next_poll": coming["sources"][source.name].isoformat(),
            }
        )
        if source.type == "mailbox":
            sources[-1]["inbound"] = _inbound_counts(received.get(source.name, {}))
    digests = []
    for digest in config.digests:
        last = store.last_edition(digest.name) if store else None
        digests.append(
            {
                "name": digest.name,
                "editions": store.edition_count(digest.name) if store else 0,
                "last_edition": last.isoformat() if last else None,
                "schedule": digest.schedule,
                "timezone": digest.timezone,
                "next_edition": coming["digests"][digest.name].isoformat(),
            }
        )
    outbox = [
        {
            "digest": d.digest,
            "channel": d.channel,
            "recipient": d.recipient,
            "status": d.status,
            "attempts": d.attempts,
            "last_error": d.last_error,
            "next_attempt": d.next_attempt.isoformat() if d.next_attempt and d.status == "pending" else None,
        }
        for d in (store.deliveries(["pending", "failed"]) if store else [])
    ]
    daemon = lock.holder(config.store.path)
    size = store.size() if store else None
    result = {
        "sources": sources,
        "digests": digests,
        "outbox": outbox,
        "articles": size.articles if size else 0,
        "daemon": {"running": daemon is not None, "pid": daemon},
        "store": {
            "path": config.store.where,
            "exists": store is not None,
            "bytes": size.bytes if size else 0,
            "articles": size.articles if size else 0,
            "articles_with_text": size.articles_with_text if size else 0,
            "keep": str(config.store.keep),
        },
    }
    if config.store.url and store is not None:
        from digest.worker import STALLED_AFTER

        result["workers"] = store.worker_report(STALLED_AFTER)
    if any(source.type == "mailbox" for source in config.sources):
        unknown = received.get("", {}).get("unknown recipient")
        result["inbound"] = {
            "unknown_recipient": unknown[0] if unknown else 0,
            "last_unknown_recipient": unknown[1].isoformat() if unknown else None,
        }
    return result


def _inbound_counts(counts: dict[str, tuple[int, datetime]]) -> dict[str, Any]:
    """A mailbox source's mail for `digest status`: accepted, refused by reason, deferred, last received."""
    accepted = counts.get("accepted", (0, None))
    duplicates = counts.get("duplicate", (0, None))
    last = max((moment for _, moment in (accepted, duplicates) if moment is not None), default=None)
    refused = {reason: counts[reason][0] for reason in ("sender not allowed", "too large") if reason in counts}
    return {
        "accepted": accepted[0] + duplicates[0],
        "duplicates": duplicates[0],
        "refused": refused,
        "deferred": counts.get("store unavailable", (0, None))[0],
        "last_received": last.isoformat() if last else None,
    }


@main.command()
@click.option(
    "--listen",
    default="127.0.0.1:1025",
    show_default=True,
    metavar="HOST:PORT",
    help="Address to listen on; loopback unless you say otherwise.",
)
@click.option(
    "--maildir",
    default="mailsink",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Maildir folder that receives every message (made if missing).",
)
def mailsink(listen: str, maildir: str) -> None:
    """Run a local catch-all SMTP server that keeps every message in a Maildir.

    For trying email delivery without a mail account: point [smtp] at it
    (host 127.0.0.1, port 1025, security "none"). One line per message; stop
    with Ctrl-C.

    \b
    Example:
      digest mailsink --listen 127.0.0.1:1025 --maildir ./mail
    """
    from digest.mailsink import MailSink

    try:
        sink = MailSink(listen, Path(maildir), click.echo)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--listen") from None
    guarded(sink.serve_forever)


@main.command()
@click.pass_context
def inbound(context: click.Context) -> None:
    """Run the newsletter listener alone: SMTP on [inbound] listen, LMTP on [inbound] lmtp.

    Mail to each mailbox source's address is stored, and the next `digest run`
    (or the daemon's next poll of the source) makes articles of it. `digest
    daemon` runs this listener itself; use this command when `digest run` runs
    from cron. SIGTERM or SIGINT stops it; SIGHUP reloads the addresses.

    \b
    Example:
      digest --config config/digest.toml inbound
    """
    config = load_config(context)
    from digest.inbound import serve_forever

    sys.exit(guarded(lambda: serve_forever(config, lambda line: click.echo(line, err=True))))


@main.group()
def sources() -> None:
    """Import feeds from OPML, export them as OPML, or make a mailbox source's address."""


@sources.command("add-mailbox")
@click.argument("name")
@click.option(
    "--domain", metavar="DOMAIN", help="Domain of the address [default: that of a configured mailbox, else [inbound] hostname]."
)
@click.pass_context
def add_mailbox(context: click.Context, name: str, domain: str | None) -> None:
    """Print a fresh hard-to-guess address for a new mailbox source, and the TOML to add.

    \b
    Example:
      digest sources add-mailbox letters --domain news.example.org >> config/digest.toml
    """
    from digest.mailaddress import new_address

    config = load_config(context, required=False)
    if config is not None and any(s.name == name for s in config.sources):
        fail(EXIT_USAGE, f"a source named {name!r} exists already")
    if domain is None and config is not None:
        domain = (
            next((s.address.rpartition("@")[2] for s in config.sources if s.type == "mailbox"), None)
            or config.inbound.hostname
            or None
        )
    try:
        address = new_address(name, domain or "localhost")
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="NAME or --domain") from None
    click.echo(
        f'# subscribe to newsletters with {address}\n[[sources]]\nname = {json.dumps(name)}\ntype = "mailbox"\n'
        f'address = {json.dumps(address)}\n# senders = ["*@substack.com"]   # optional: only these senders\n',
        nl=False,
    )
    click.echo(address, err=True)


@sources.command("import")
@click.argument("opml_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--append", is_flag=True, help="Add the new [[sources]] to the config file (checked, undone if invalid).")
@click.pass_context
def import_sources(context: click.Context, opml_file: Path, append: bool) -> None:
    """Turn an OPML subscription list into [[sources]] entries (printed, or appended with --append).

    Feeds whose URL is configured already are skipped; names are made unique.

    \b
    Example:
      digest sources import subscriptions.opml >> config/digest.toml
      digest sources import subscriptions.opml --append
    """
    from digest import opml
    from digest.config import load

    config = load_config(context, required=append)
    taken = {s.name for s in config.sources} if config else set()
    known = {getattr(s, "url", "") for s in config.sources} if config else set()

    def convert() -> tuple[str, int, int, int]:
        try:
            data = opml_file.read_bytes()
        except OSError as error:
            raise ConfigError(str(opml_file), "", f"cannot read: {error.strerror or error}") from None
        feeds, skipped = opml.read_opml(data, str(opml_file))
        text, added, duplicates = opml.sources_toml(feeds, taken, known)
        return text, added, duplicates, skipped

    text, added, duplicates, skipped = guarded(convert)
    summary = (
        f"{added} feeds imported from {opml_file}; {duplicates} already configured; {skipped} without an http(s) feed URL skipped"
    )
    if not append:
        if text:
            click.echo(f"# {summary}\n\n{text}", nl=False)
        click.echo(summary, err=True)
        return
    original = config.path.read_text(encoding="utf-8")
    if text:
        config.path.write_text(original.rstrip("\n") + f"\n\n# {summary}\n" + text, encoding="utf-8")
        try:
            updated = load(config.path)
        except ConfigError as error:
            config.path.write_text(original, encoding="utf-8")
            fail(EXIT_USAGE, f"config error after import, file left unchanged: {error}")
    click.echo(f"{summary}; {'appended to ' + str(config.path) if text else 'nothing to add'}")
    if text:
        click.echo(_where_new_feeds_go(updated, [s.name for s in updated.sources[len(config.sources) :]]))


def _where_new_feeds_go(config: Any, names: list[str]) -> str:
    """One line: which digests will include the newly imported feeds, or a warning that none will."""
    takers = sorted({d.name for name in names for d in config.digests_of(name)})
    if takers:
        return f"the new feeds go into digest{'s' if len(takers) > 1 else ''} {', '.join(takers)} (a digest without sources takes every source)"
    return (
        "warning: no digest includes the new feeds (every digest lists its sources); add their names to a "
        "digest's sources, or leave a digest's sources out to take every source"
    )


@sources.command("export")
@click.pass_context
def export_sources(context: click.Context) -> None:
    """Print the configured feeds as OPML 2.0, for any feed reader.

    \b
    Example:
      digest sources export > subscriptions.opml
    """
    from digest import opml
    from digest.config import FeedSourceConfig

    config = load_config(context)
    click.echo(opml.export_opml([s for s in config.sources if isinstance(s, FeedSourceConfig)], now()), nl=False)


@main.group()
def subscribers() -> None:
    """Readers of a digest with their own time, time zone and include/exclude words."""


def _subscriber_digest(config: Any, name: str | None) -> Any:
    """The digest named by --digest; the only one when the config has one."""
    if name is None:
        if len(config.digests) != 1:
            fail(
                EXIT_USAGE,
                "--digest NAME: say which digest (the config has "
                f"{len(config.digests)}: {', '.join(d.name for d in config.digests) or 'none'})",
            )
        return config.digests[0]
    return guarded(lambda: config.digest(name))


Command = TypeVar("Command", bound=Callable[..., None])


def _reader_options(command: Command) -> Command:
    """The options `subscribers add` and `invite` share: EMAIL, the digest, their time and words."""
    options: list[Callable[[Command], Command]] = [
        click.argument("email"),
        click.option("--digest", "digest_name", metavar="NAME", help="The digest [default: the only one]."),
        click.option("--timezone", metavar="TZ", help="The reader's time zone, e.g. Europe/London [default: the digest's]."),
        click.option("--at", metavar="HH:MM", help="Local time of their daily mail [default: the digest's time, else 07:00]."),
        click.option(
            "--include", multiple=True, metavar="WORDS", help="Only articles mentioning one of these (comma-separated)."
        ),
        click.option(
            "--exclude", multiple=True, metavar="WORDS", help="Never articles mentioning one of these (comma-separated)."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@subscribers.command("add")
@_reader_options
@click.pass_context
def subscribers_add(
    context: click.Context,
    email: str,
    digest_name: str | None,
    timezone: str | None,
    at: str | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
) -> None:
    """Subscribe EMAIL (`addr` or "Name <addr>") to a digest, or change their settings.

    \b
    Examples:
      digest subscribers add ann@example.com --digest daily --timezone Asia/Tokyo --at 07:00
      digest subscribers add "Bob <bob@example.net>" --exclude football,cricket
    """
    _subscriber_command(context, email, digest_name, timezone, at, include, exclude, confirmed=True)


@subscribers.command("invite")
@_reader_options
@click.pass_context
def subscribers_invite(
    context: click.Context,
    email: str,
    digest_name: str | None,
    timezone: str | None,
    at: str | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
) -> None:
    """Double opt-in: send EMAIL a confirmation mail; nothing else is sent until they confirm.

    \b
    Example:
      digest subscribers invite ann@example.com --digest daily
    """
    _subscriber_command(context, email, digest_name, timezone, at, include, exclude, confirmed=False)


def _subscriber_command(
    context: click.Context,
    email: str,
    digest_name: str | None,
    timezone: str | None,
    at: str | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    confirmed: bool,
) -> None:
    config = load_config(context)
    digest = _subscriber_digest(config, digest_name)
    from digest import subscribers as subscribers_module
    from digest.addresses import parse_mailbox
    from digest.store import open_store

    try:
        mailbox = parse_mailbox(email)
        chosen = subscribers_module.wishes(digest, timezone, at, include, exclude)
    except ValueError as error:
        fail(EXIT_USAGE, str(error))
    if not confirmed and not digest.base_url:
        fail(
            EXIT_USAGE,
            f"config error: {config.path}: digest {digest.name} has no base_url; an invitation's "
            "confirmation link points there (see README, Subscribers)",
        )

    def add() -> tuple[Any, bool, str]:
        store = open_store(config.store)
        try:
            subscriber, new = subscribers_module.subscribe(store, digest, str(mailbox), chosen, now(), confirmed)
            sent = ""
            if subscriber.status == "invited":
                from digest import unsubscribe

                sent = unsubscribe.send_invitation(config, store, subscriber, now())
            return subscriber, new, sent
        finally:
            store.close()

    subscriber, new, sent = guarded(add)
    words = "".join(
        f"; {label} {', '.join(values)}"
        for label, values in (("include", subscriber.include), ("exclude", subscriber.exclude))
        if values
    )
    state = "invited (waiting for confirmation)" if subscriber.status == "invited" else subscriber.status
    click.echo(
        f"{'added' if new else 'updated'} {subscriber.address} to {digest.name}: {state}, "
        f"daily at {subscriber.at} {subscriber.timezone}{words}"
    )
    if sent:
        click.echo(sent)


@subscribers.command("list")
@click.option("--digest", "digest_name", metavar="NAME", help="Only this digest's subscribers.")
@click.option("--json", "as_json", is_flag=True, help="Print them as a JSON list.")
@click.option("--all", "everyone", is_flag=True, help="Also those who unsubscribed.")
@click.pass_context
def subscribers_list(context: click.Context, digest_name: str | None, as_json: bool, everyone: bool) -> None:
    """List subscribers: address, digest, time, time zone, words, status.

    \b
    Example:
      digest subscribers list --json
    """
    config = load_config(context)
    from digest import subscribers as subscribers_module
    from digest.store import open_store

    if digest_name is not None:
        guarded(lambda: config.digest(digest_name))
    statuses = ("active", "invited", "unsubscribed") if everyone else ("active", "invited")

    def gather() -> list[Any]:
        store = open_store(config.store)
        try:
            return store.subscribers(digest_name, statuses)
        finally:
            store.close()

    found = guarded(gather)
    if as_json:
        click.echo(json.dumps([subscribers_module.as_json(s) for s in found], indent=2, ensure_ascii=False))
        return
    if not found:
        click.echo("no subscribers")
    for subscriber in found:
        words = "".join(
            f" {label} {','.join(values)}"
            for label, values in (("include", subscriber.include), ("exclude", subscriber.exclude))
            if values
        )
        name = f" ({subscriber.name})" if subscriber.name else ""
        click.echo(
            f"{subscriber.address}{name} {subscriber.digest} {subscriber.at} {subscriber.timezone} {subscriber.status}{words}"
        )


@subscribers.command("remove")
@click.argument("email")
@click.option("--digest", "digest_name", metavar="NAME", help="Only from this digest [default: from every digest].")
@click.pass_context
def subscribers_remove(context: click.Context, email: str, digest_name: str | None) -> None:
    """Remove EMAIL from a digest's subscribers (from every digest without --digest).

    \b
    Example:
      digest subscribers remove ann@example.com
    """
    config = load_config(context)
    from digest.addresses import parse_mailbox
    from digest.store import open_store

    if digest_name is not None:
        guarded(lambda: config.digest(digest_name))
    try:
        address = parse_mailbox(email).address
    except ValueError as error:
        fail(EXIT_USAGE, str(error))

    def remove() -> int:
        store = open_store(config.store)
        try:
            return store.remove_subscriber(address, digest_name)
        finally:
            store.close()

    removed = guarded(remove)
    if not removed:
        fail(EXIT_USAGE, f"{address} is not a subscriber{f' of {digest_name}' if digest_name else ''}")
    click.echo(f"removed {address} ({removed} subscription{'s' if removed != 1 else ''})")


@main.command()
@click.argument("query")
@click.option("--digest", "digest_name", metavar="NAME", help="Only articles that were in an edition of this digest.")
@click.option("--since", metavar="DATE", help="Only articles published on or after DATE (YYYY-MM-DD or ISO 8601; UTC).")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="Results at most.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_context
def search(context: click.Context, query: str, digest_name: str | None, since: str | None, limit: int, as_json: bool) -> None:
    """Find stored articles by the words of their title, summary or text, best first, with their editions.

    Every word must appear (in any form: "quakes" finds "quake"); anything but letters and
    digits only separates words. Text pruned by [store] keep is no longer searched.

    \b
    Example:
      digest search "tram line" --digest daily --since 2026-11-01
    """
    config = load_config(context)
    from digest import search as searching
    from digest.deliver import safe_name
    from digest.errors import QueryError
    from digest.store import open_store

    if digest_name is not None:
        guarded(lambda: config.digest(digest_name))
    try:
        moment = searching.parse_since(since) if since is not None else None
        searching.query_words(query)
    except QueryError as error:
        fail(EXIT_USAGE, f"search: {error}")
    if not config.store.path.exists():
        fail(EXIT_CANNOT_RUN, f"no store at {config.store.path} yet: nothing to search (the first `digest run` makes it)")

    def find() -> tuple[list[Any], Any]:
        store = open_store(config.store)
        try:
            hits = searching.search(store, query, digest_name, moment, limit)
            return hits, searching.Pages.of(store, config, hits)
        finally:
            store.close()

    hits, pages = guarded(find)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "query": query,
                    "words": list(searching.query_words(query)),
                    "results": [searching.hit_document(hit, pages) for hit in hits],
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    if not hits:
        click.echo("no article found")
        return
    digests = {d.name: d for d in config.digests}
    for number, hit in enumerate(hits, 1):
        article = hit.article
        when = (article.published or article.fetched).astimezone(timezone.utc).strftime("%Y-%m-%d")
        click.echo(f"{number}. {article.title}\n   {article.source}, {when}" + (f", {article.url}" if article.url else ""))
        if hit.excerpt:
            click.echo(f"   {hit.excerpt}")
        for ref in hit.editions:
            digest = digests.get(ref.digest)
            zone = digest.timezone if digest else "UTC"
            page = pages.page(ref.id)
            where = f": {digest.output_dir / safe_name(ref.digest) / page}" if digest and digest.output_dir and page else ""
            click.echo(f"   in {ref.digest}, edition {ref.id} of {_local(ref.created, zone)}{where}")
        if not hit.editions:
            click.echo("   in no edition yet")


def _local(moment: datetime, zone: str) -> str:
    from zoneinfo import ZoneInfo

    return f"{moment.astimezone(ZoneInfo(zone)).strftime('%Y-%m-%d %H:%M')} {zone}"


@main.group()
def store() -> None:
    """The store itself: move it to PostgreSQL when one machine is outgrown."""


@store.command("copy")
@click.option(
    "--to",
    "to",
    required=True,
    metavar="URL|FILE",
    help="postgresql://user@host/database (password from [store] password_env), or a new SQLite file.",
)
@click.pass_context
def store_copy(context: click.Context, to: str) -> None:
    """Copy everything in the store [store] names into a new, empty store: articles, editions, the outbox
    (Message-IDs and attempts kept), sources' memos, subscribers. Then set [store] url to use it.

    \b
    Example:
      digest store copy --to postgresql://digest@db.example.org/digest
    """
    config = load_config(context)
    from digest.store import copy_store_to

    if config.store.url and config.store.url == to:
        fail(EXIT_USAGE, "store copy: --to names the store the config already uses")
    copied = guarded(lambda: copy_store_to(config.store, to))
    click.echo(f"copied {config.store.where} to {to.split('?')[0]}: " + ", ".join(f"{n} {table}" for table, n in copied.items()))
    click.echo(f'now set [store] url = "{to}" in {config.path}' if "://" in to else f'now set [store] path = "{to}"')


@main.group()
def archive() -> None:
    """The archive of each digest's editions: index pages and Atom feeds in its output folder."""


@archive.command("rebuild")
@click.option("--digest", "digest_name", metavar="NAME", help="Only this digest.")
@click.pass_context
def rebuild_archive(context: click.Context, digest_name: str | None) -> None:
    """Regenerate every archive page and Atom feed from the store (after a template or base_url change).

    Files whose bytes would not change are left alone, so a rebuild with nothing changed writes nothing.

    \b
    Example:
      digest archive rebuild --digest daily
    """
    config = load_config(context)
    from digest import pipeline

    for name, report in guarded(lambda: pipeline.rebuild_archives(config, digest_name)):
        if report is None:
            click.echo(f"digest {name}: no archive (no output_dir, archive = false, or no editions yet)")
            continue
        removed = f", {len(report.removed)} removed" if report.removed else ""
        click.echo(f"digest {name}: {len(report.written)} files written, {report.unchanged} unchanged{removed}")


@main.command()
@click.option(
    "--listen",
    default="127.0.0.1:8080",
    show_default=True,
    metavar="HOST:PORT",
    help="Address to listen on; loopback unless you say otherwise.",
)
@click.pass_context
def serve(context: click.Context, listen: str) -> None:
    """Serve each digest's archive (/DIGEST/, /DIGEST/feed.atom) and /healthz over HTTP.

    /healthz answers 200 while the store opens and every poll and edition ran when due,
    503 with a JSON reason otherwise. Stop with Ctrl-C or SIGTERM.

    \b
    Example:
      digest serve --listen 127.0.0.1:8080
    """
    config = load_config(context)
    from digest import web

    try:
        web.parse_listen(listen)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--listen") from None
    guarded(lambda: web.serve(config, listen, now, click.echo))
