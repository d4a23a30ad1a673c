"""Render an edition with Jinja2: the only module that imports it.

Templates are looked up first in the digest's `templates` folder, then in the
packaged default theme, so a user overrides one file without copying the rest.
HTML is autoescaped; links are kept only when they are http(s).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import css_inline
import jinja2

from digest import __version__
from digest.errors import RenderError
from digest.models import Edition, RenderedEdition, Section, SourceProblem
from digest.registry import FORMATS
from digest.sanitise import output_url

WHOLE_FIRST = 100  # an email edition of up to this many stories is first tried whole; a bigger one grows to fit
TEMPLATE_NAMES = FORMATS  # format -> template file, from digest.registry
# Added to every email's CSS: images shrink to the screen and never overflow it.
EMAIL_CSS = "img { max-width: 100%; height: auto; border: 0; }"
_EMAIL_INLINER = css_inline.CSSInliner(
    keep_style_tags=False,
    keep_link_tags=False,
    load_remote_stylesheets=False,  # nothing is fetched at run time
    extra_css=EMAIL_CSS,
    apply_width_attributes=True,  # Outlook reads width attributes, not CSS
)


def packaged_templates() -> Path:
    """The default theme: inside the installed package, or templates/ in a checkout."""
    here = Path(__file__).resolve().parent
    installed = here / "templates"
    return installed if (installed / "digest.html").is_file() else here.parent / "templates"


def http_url(url: str | None) -> str:
    """The URL if it is http(s), percent-encoded to be inert in every format; else "" (no javascript: or data: links)."""
    return output_url(url)


def email_html(html: str) -> str:
    """HTML for mail clients: every CSS rule moved into style attributes, <style> and <link> dropped."""
    try:
        return _EMAIL_INLINER.inline(html)
    except (css_inline.InlineError, ValueError) as error:
        raise RenderError(f"cannot inline the CSS of the HTML digest: {error}") from None


def _markdown_text(text: str) -> str:
    """Escape the characters Markdown would read as formatting, markup or an entity (each by a backslash,
    which CommonMark allows before any ASCII punctuation), and a list or heading marker at the start."""
    escaped = "".join("\\" + c if c in _MARKDOWN_SPECIAL else c for c in text)
    return _MARKDOWN_LINE_START.sub(r"\1\\\2", escaped)


_MARKDOWN_SPECIAL = frozenset("\\`*_{}[]<>()#+!|~&")
_MARKDOWN_LINE_START = re.compile(r"^(\s*\d*)([-=.)])", re.MULTILINE)  # "- item", "===", "1. item", "1) item"


@lru_cache(maxsize=16)
def renderer_for(user_templates: Path | None) -> Renderer:
    """The Renderer of a template folder, made once per process: Jinja2 compiles each
    template once and reloads it only when its file changes."""
    return Renderer(user_templates)


class Renderer:
    """A compiled-once Jinja2 environment for one template folder."""

    def __init__(self, user_templates: Path | None = None) -> None:
        folders = [str(user_templates)] if user_templates else []
        folders.append(str(packaged_templates()))
        self.environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(folders),
            autoescape=jinja2.select_autoescape(["html", "htm"], default_for_string=False),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.environment.filters["http_url"] = http_url
        self.environment.filters["markdown_text"] = _markdown_text
        self.environment.policies["json.dumps_kwargs"] = {"sort_keys": False, "ensure_ascii": False}

    def context(
        self,
        digest_name: str,
        timezone_name: str,
        edition: Edition,
        sections: list[Section],
        problems: Sequence[SourceProblem] = (),
    ) -> dict[str, Any]:
        """The variables every template sees."""
        zone = ZoneInfo(timezone_name)
        local: datetime = edition.created.astimezone(zone)
        return {
            "problems": [
                {
                    "source": p.source,
                    "since": p.since.astimezone(zone).strftime("%Y-%m-%d %H:%M") if p.since else "",
                    "error": p.error,
                }
                for p in problems
            ],
            "digest": {"name": digest_name, "timezone": timezone_name},
            "edition": {
                "id": edition.id,
                "date": local.strftime("%Y-%m-%d"),
                "time": local.strftime("%H:%M"),
                "created": local,
                "count": len(edition.articles),
                "stories": sum(len(section.stories) for section in sections),
                "waiting": edition.waiting,
                "left_out": 0,  # stories of this edition the email had no room for (email_max_bytes)
                "without_summary": 0,  # stories shown by their headline alone, for the same reason
                "full_edition": False,  # the edition is also written whole (output_dir)
                "full_url": "",  # the whole edition's page in the archive, when it has a base_url
            },
            "sections": sections,
            **headlines_of(sections),
            "json_document": lambda: json_document(digest_name, edition, sections, problems),
            "version": __version__,
            "local_date": lambda moment: moment.astimezone(zone).strftime("%Y-%m-%d") if moment else "",
        }

    def render(self, template_name: str, context: dict[str, Any]) -> str:
        """Render one template file; RenderError names the template and the problem."""
        try:
            return self.environment.get_template(template_name).render(context)
        except jinja2.TemplateNotFound as error:
            raise RenderError(f"template not found: {error.name}") from None
        except jinja2.TemplateError as error:
            raise RenderError(f"template {template_name}: {error}") from None

    def generate(self, template_name: str, context: dict[str, Any]) -> Iterator[str]:
        """Render one template file in pieces as Jinja2 makes them, so a big document is never whole in memory."""
        try:
            yield from self.environment.get_template(template_name).generate(context)
        except jinja2.TemplateNotFound as error:
            raise RenderError(f"template not found: {error.name}") from None
        except jinja2.TemplateError as error:
            raise RenderError(f"template {template_name}: {error}") from None

    def render_string(self, source: str, context: dict[str, Any]) -> str:
        """Render a one-line template from the config, such as the email subject."""
        try:
            return self.environment.from_string(source).render(context)
        except jinja2.TemplateError as error:
            raise RenderError(f"template {source!r}: {error}") from None

    def check(self, subject: str, sample: dict[str, Any] | None = None) -> None:
        """Compile every format's template and the subject line, and render them once with a
        `sample` context (an undefined variable fails here: StrictUndefined), so that a mistake
        shows before an edition is made rather than at its delivery; RenderError names the template."""
        for name in TEMPLATE_NAMES.values():
            try:
                template = self.environment.get_template(name)
                if sample is not None:
                    template.render(sample)
            except jinja2.TemplateNotFound as error:
                raise RenderError(f"template not found: {error.name}") from None
            except jinja2.TemplateError as error:
                raise RenderError(f"template {name}: {error}") from None
        try:
            compiled = self.environment.from_string(subject)
            if sample is not None:
                compiled.render(sample)
        except jinja2.TemplateError as error:
            raise RenderError(f"subject template {subject!r}: {error}") from None

    def render_edition(
        self, formats: tuple[str, ...], subject: str, context: dict[str, Any], lazy: bool = False
    ) -> RenderedEdition:
        """Render the edition in every format, and its subject line. `lazy`: each format is rendered
        when it is read and not kept, so a big edition's files are written one at a time."""
        bodies: Mapping[str, str]
        if lazy:
            bodies = _RenderedOnRead(self, context, formats)
        else:
            bodies = {fmt: self.render(TEMPLATE_NAMES[fmt], context) for fmt in formats}
        return RenderedEdition(subject=self.render_string(subject, context), bodies=bodies)

    def render_email(
        self, subject: str, context: dict[str, Any], fits: Callable[[RenderedEdition], bool] | None = None
    ) -> RenderedEdition:
        """The edition as an email: subject, plain text ("txt") and HTML with inlined CSS ("html").

        With `fits` (is this message small enough?), an edition too big for it keeps every
        headline and as many summaries as fit, or, when even its headlines do not fit, as many
        headlines as fit; the template is told how many stories the email leaves out."""
        count = sum(len(section.stories) for section in context["sections"])
        if fits is None or count <= WHOLE_FIRST:
            whole = self._email(subject, context)
            if fits is None or fits(whole):
                return whole

        def trimmed(headlines: int, summaries: int) -> RenderedEdition:
            return self._email(subject, _trimmed_context(context, headlines, summaries, count))

        # Counts are tried from small upwards (doubling), so a big edition is never rendered whole here.
        headlines = _most(lambda shown: fits(trimmed(shown, 0)), count)
        if headlines < count:
            return trimmed(headlines, 0)
        summaries = _most(lambda shown: fits(trimmed(count, shown)), count)
        return self._email(subject, context) if summaries == count else trimmed(count, summaries)

    def _email(self, subject: str, context: dict[str, Any]) -> RenderedEdition:
        rendered = self.render_edition(("txt", "html"), subject, context)
        return RenderedEdition(subject=rendered.subject, bodies={**rendered.bodies, "html": email_html(rendered.bodies["html"])})


class _RenderedOnRead(Mapping[str, str]):
    """Documents by format, each rendered when it is read and never kept; `pieces` streams one."""

    def __init__(self, renderer: Renderer, context: dict[str, Any], formats: tuple[str, ...]) -> None:
        self._renderer = renderer
        self._context = context
        self._formats = formats

    def __getitem__(self, fmt: str) -> str:
        if fmt not in self._formats:
            raise KeyError(fmt)
        return self._renderer.render(TEMPLATE_NAMES[fmt], self._context)

    def pieces(self, fmt: str) -> Iterator[str]:
        """The document in pieces as Jinja2 makes them, so it is never whole in memory."""
        if fmt not in self._formats:
            raise KeyError(fmt)
        yield from self._renderer.generate(TEMPLATE_NAMES[fmt], self._context)

    def __iter__(self) -> Iterator[str]:
        return iter(self._formats)

    def __len__(self) -> int:
        return len(self._formats)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def json_document(
    digest_name: str, edition: Edition, sections: Sequence[Section], problems: Sequence[SourceProblem]
) -> dict[str, Any]:
    """The edition as the stable JSON format for programs (README, "An edition as JSON")."""
    return {
        "digest": digest_name,
        "edition": edition.id,
        "created": edition.created.isoformat(),
        "stories": [
            {
                "title": story.lead.title,
                "section": section.heading,
                "sources": len({a.source for a in story.articles}),
                "summary": list(story.lead.summary),
                "follow_up_of": _iso(story.follows_up),
                "articles": [
                    {"source": a.source, "title": a.title, "link": http_url(a.url) or None, "published": _iso(a.published)}
                    for a in story.articles
                ],
            }
            for section in sections
            for story in section.stories
        ],
        "sources_with_problems": [{"source": p.source, "since": _iso(p.since), "error": p.error} for p in problems],
    }


def _most(fits: Callable[[int], bool], most: int) -> int:
    """The largest n in [0, most] with fits(n) (fits(0) taken as true; fits turns False only as n
    grows): doubling from 8 until it does not fit, then halving the gap (about 2 log2 n tries), so
    no try renders much more than twice what fits."""
    low, high = 0, 8
    while high < most and fits(high):
        low, high = high, high * 2
    high = min(high, most)
    if high == most and low < most and fits(most):
        return most
    high -= 1
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _trimmed_context(context: dict[str, Any], headlines: int, summaries: int, count: int) -> dict[str, Any]:
    """The context with only the first `headlines` stories, the first `summaries` of them with their
    summary; `edition.left_out` and `edition.without_summary` say what the email lacks."""
    sections: list[Section] = []
    shown = 0
    for section in context["sections"]:
        kept = []
        for story in section.stories:
            if shown >= headlines:
                break
            kept.append(story if shown < summaries else replace(story, lead=replace(story.lead, summary=())))
            shown += 1
        if kept:
            sections.append(replace(section, stories=tuple(kept)))
    edition = {**context["edition"], "left_out": count - shown, "without_summary": shown - min(summaries, shown)}
    return {**context, "sections": sections, **headlines_of(sections), "edition": edition}


def headlines_of(sections: Sequence[Section]) -> dict[str, Any]:
    """What opens every edition: `headlines`, one per story in edition order (its number, its lead's title,
    source and article id: the entry's anchor is `story-<id>`; how many sources report it; whether it
    follows up an earlier edition's story), and `numbers`, each story's number by that id."""
    headlines = [
        {
            "number": number,
            "title": story.lead.title,
            "source": story.lead.source,
            "id": story.lead.id,
            "sources": len({a.source for a in story.articles}),
            "follow_up": story.follows_up is not None,
        }
        for number, story in enumerate((story for section in sections for story in section.stories), 1)
    ]
    return {"headlines": headlines, "numbers": {headline["id"]: headline["number"] for headline in headlines}}
