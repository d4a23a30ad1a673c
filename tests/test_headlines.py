"""Every edition opens with its headlines, one line per story, linked to the story's entry: anchors in
html (checked by resolving each link to an element of the page) and in the email, numbered in txt.

The editions are made by the real CLI over three `files` sources; one event is reported by all three,
another by two, the rest by one.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import lxml.html

from tests.smtpserver import smtp_server
from tests.inprocess import run_in_process

NOW = "2026-11-27T07:00:00+00:00"

# source -> {file name: (title, text)}
STORIES = {
    "herald": {
        "quake.txt": (
            "Strong earthquake strikes Elazig province in eastern Turkey",
            "A magnitude 6.8 earthquake struck Elazig province in eastern Turkey on Friday evening, killing at least 22 "
            "people and injuring more than 1,000, Turkey's disaster agency AFAD said. The quake's epicentre was near "
            "the town of Sivrice. Rescue teams from Malatya and Diyarbakir searched collapsed buildings overnight.",
        ),
        "budget.txt": (
            "City council approves harbour budget for 2027",
            "Lakeside city council approved a budget of 41 million euros for the harbour on Thursday. Councillor "
            "Mirja Aalto said the quay repairs will start in March and last two years.",
        ),
        "choir.txt": (
            "Children's choir wins national contest",
            "The Northfield children's choir won the national choir contest in Tampere on Sunday, singing three "
            "folk songs arranged by their conductor Ilse Varga.",
        ),
    },
    "wire": {
        "elazig.txt": (
            "Earthquake of magnitude 6.8 hits Elazig, Turkey; 22 dead",
            "An earthquake of magnitude 6.8 hit Elazig province in eastern Turkey on Friday, killing 22 people and "
            "injuring over 1,000, according to AFAD, Turkey's disaster agency. The epicentre was near Sivrice. "
            "Teams from Malatya and Diyarbakir worked through the night in collapsed buildings.",
        ),
        "strike.txt": (
            "Rail workers strike over pay at Vestby depot",
            "Rail workers at the Vestby depot went on strike on Monday over pay, union leader Odd Brekke said. "
            "Trains between Vestby and Moss are cancelled until Wednesday.",
        ),
    },
    "post": {
        "turkey.txt": (
            "Elazig earthquake: 22 killed in eastern Turkey",
            "At least 22 people were killed when a magnitude 6.8 earthquake struck Elazig in eastern Turkey on "
            "Friday, AFAD, the disaster agency, said; more than 1,000 were injured. The epicentre was near Sivrice, "
            "and rescuers from Malatya and Diyarbakir searched the rubble overnight.",
        ),
        "vestby.txt": (
            "Vestby rail depot strike cancels trains to Moss",
            "A strike over pay by rail workers at the Vestby depot cancelled trains between Vestby and Moss on "
            "Monday; union leader Odd Brekke said it lasts until Wednesday.",
        ),
        "bakery.txt": (
            "Old bakery on Mill Street reopens",
            "The old bakery on Mill Street reopened on Saturday after two years, run by the baker Tove Lind, "
            "who kept the wood-fired oven.",
        ),
    },
}


def three_sources(root: Path, extra: str = "", formats: str = '["html", "md", "txt"]') -> Path:
    """A project with the three sources' files and one digest over them; its config file."""
    for source, stories in STORIES.items():
        folder = root / source
        folder.mkdir(parents=True)
        for name, (title, text) in stories.items():
            (folder / name).write_text(f"{title}\n\n{text}\n", encoding="utf-8")
    sources = "".join(f'\n[[sources]]\nname = "{name}"\ntype = "files"\npath = "{name}"\n' for name in STORIES)
    config = root / "digest.toml"
    config.write_text(
        textwrap.dedent("""\
        [store]
        path = "state/digest.sqlite3"

        [summary]
        workers = 0
        """)
        + sources
        + textwrap.dedent(f"""
        [[digests]]
        name = "daily"
        output_dir = "out"
        formats = {formats}
        """)
        + extra,
        encoding="utf-8",
    )
    return config


def run(root: Path, config: Path) -> dict[str, str]:
    """`digest run`; the edition's files by suffix."""
    result = run_in_process("--config", str(config), "run", cwd=root, now=NOW)
    assert result.returncode == 0, result.stdout + result.stderr
    return {
        path.suffix: path.read_text(encoding="utf-8")
        for path in (root / "out" / "daily").glob("*.*")
        if path.is_file() and path.suffix in (".html", ".md", ".txt", ".json")
    }


def entries(page: lxml.html.HtmlElement) -> list[str]:
    """The ids of the page's story entries, in page order."""
    return [element.get("id") for element in page.xpath("//*[starts-with(@id, 'story-')]")]


def test_every_format_opens_with_one_headline_per_story_linked_to_its_entry(tmp_path: Path) -> None:
    files = run(tmp_path, three_sources(tmp_path))
    page = lxml.html.fromstring(files[".html"])
    links = page.xpath("//*[@class='headlines']//a")
    stories = entries(page)
    assert len(links) == len(stories) >= 3  # one headline per story
    for link in links:
        [target] = page.xpath(f"//*[@id='{link.get('href').removeprefix('#')}']")  # resolves to one element of the page
        assert link.get("href").startswith("#") and link.text_content() == target.xpath(".//h3")[0].text_content()
    assert [link.get("href")[1:] for link in links] == stories  # in the order the entries come
    assert page.xpath("//*[@class='headlines']")[0].getprevious().get("class") == "masthead"  # right under the masthead

    text = files[".txt"]
    listed = re.findall(
        r"^ ?(\d+)\. (.+?)(?: \(\d+ sources\))?(?: \(follow-up\))?$",
        text.split("HEADLINES\n", 1)[1].split("\n\n", 1)[0],
        re.MULTILINE,
    )
    assert [int(number) for number, _ in listed] == list(range(1, len(stories) + 1))
    for number, title in listed:  # each numbered entry below carries the headline's number and title
        assert re.search(rf"^{number}\. {re.escape(title)}$", text.split("HEADLINES\n", 1)[1].split("\n\n", 1)[1], re.MULTILINE)
    assert text.index("HEADLINES") < text.index("== ")  # before the first section

    markdown = files[".md"]
    anchors = re.findall(r"^\d+\. \[.+\]\(#(story-\d+)\)(?: · .+)?$", markdown, re.MULTILINE)
    assert anchors == stories and all(f'<a id="{anchor}"></a>' in markdown for anchor in anchors)


def test_the_email_opens_with_its_headlines_linked_to_anchors(tmp_path: Path) -> None:
    with smtp_server() as server:
        config = three_sources(
            tmp_path,
            textwrap.dedent(f"""\
            email_to = ["ann@example.com"]

            [smtp]
            host = "127.0.0.1"
            port = {server.port}
            from = "Daily <digest@example.org>"
            """),
        )
        run(tmp_path, config)
        [received] = server.accepted
    message = received.message
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    page = lxml.html.fromstring(html)
    links = page.xpath("//a[starts-with(@href, '#story-')]")
    assert len(links) == len(entries(page)) >= 3
    assert all(len(page.xpath(f"//*[@id='{link.get('href')[1:]}']")) == 1 for link in links)
    assert re.search(r"^HEADLINES\r?\n 1\. ", text, re.MULTILINE)
