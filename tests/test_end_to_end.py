"""The shipped config, end to end: the main run through the real CLI in a subprocess (and a run beside
another process), the other commands in process with CliRunner (tests/inprocess.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import REPO, Project
from tests.httpserver import LocalServer, RequestHandler
from tests.inprocess import invoke, run_in_process

SEED = next((REPO / "seeds").glob("*.txt"))
HEADLINE = "Putin lays out firm conditions for truce with Ukraine, says Russia never intended to attack Europe"


def edition_files(project: Project) -> list[Path]:
    """The editions' own files (named by their time), not the archive's index and feed beside them."""
    return sorted((project.out / "daily").glob("[0-9]*.*")) if (project.out / "daily").exists() else []


def test_run_writes_html_markdown_and_text_digests_of_the_seed(project: Project) -> None:
    result = project.cli("run")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # piped: no progress bar, nothing extra
    files = edition_files(project)
    assert sorted(p.suffix for p in files) == [".html", ".md", ".txt"]
    text = next(p for p in files if p.suffix == ".txt").read_text()
    html = next(p for p in files if p.suffix == ".html").read_text()
    markdown = next(p for p in files if p.suffix == ".md").read_text()
    for document in (text, html):
        assert HEADLINE in document
        assert "2025-11-27" in document
        assert "date 2025" not in document
    assert "date 2025" not in markdown and "2025-11-27" in markdown
    block = text.rsplit(HEADLINE, 1)[1].split("\n\n", 2)[
        1
    ]  # the summary paragraph after the entry's date line (the first is in the headlines)
    sentences = re.findall(r"[^.!?]+[.!?]", " ".join(block.split()))
    assert 2 <= len(sentences) <= 5
    assert "<script" not in html


def test_second_run_with_nothing_new_makes_no_edition_and_says_so(project: Project) -> None:
    assert invoke(project, "run").returncode == 0
    before = edition_files(project)
    again = invoke(project, "run", now="2026-11-28T07:00:00+00:00")
    assert again.returncode == 0, again.stderr
    assert "nothing new" in again.stdout
    assert edition_files(project) == before


def test_a_changed_seed_reaches_the_next_edition_without_overwriting_the_first(project: Project) -> None:
    assert invoke(project, "run").returncode == 0
    seed = next((project.root / "seeds").glob("*.txt"))
    seed.write_text(seed.read_text() + "\nA late paragraph adds that talks will resume in December in Geneva.\n")
    assert invoke(project, "run", now="2026-11-28T07:00:00+00:00").returncode == 0
    assert len(edition_files(project)) == 6


def test_preview_shows_the_next_edition_and_changes_nothing(project: Project) -> None:
    shown = invoke(project, "preview", "--format", "md")
    assert shown.returncode == 0, shown.stderr
    assert "Putin lays out firm conditions" in shown.stdout
    assert edition_files(project) == []
    status = json.loads(invoke(project, "status", "--json").stdout)
    assert status["articles"] == 0 and status["digests"][0]["editions"] == 0
    assert invoke(project, "run").returncode == 0  # the real run still finds the article new
    assert len(edition_files(project)) == 3
    after = invoke(project, "preview")
    assert "nothing new" in after.stderr


def test_run_json_report_names_sources_editions_and_deliveries(project: Project) -> None:
    result = invoke(project, "run", "--json")
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["sources"] == [
        {"name": "seeds", "new_articles": 1, "backlog": 0, "seen": 0, "error": "", "waiting_until": "", "notes": []}
    ]
    assert report["editions"][0]["articles"] == 1
    assert report["deliveries"][0]["status"] == "delivered"


def test_summarize_prints_the_summary_one_sentence_a_line_without_a_config(tmp_path: Path) -> None:
    result = run_in_process("summarize", str(SEED), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert 2 <= len(lines) <= 3
    assert all(line.rstrip().endswith((".", '"', "”", "?", "!")) for line in lines)
    assert not any("date 2025" in line for line in lines)


def test_summarize_reads_stdin_and_jsonl(tmp_path: Path) -> None:
    text = SEED.read_text()
    from_stdin = run_in_process("summarize", "-", cwd=tmp_path, stdin=text)
    assert from_stdin.returncode == 0 and from_stdin.stdout.strip()
    lines = tmp_path / "in.jsonl"
    lines.write_text(json.dumps({"id": "a", "text": text}) + "\n" + json.dumps({"id": "b", "text": text, "title": "T"}) + "\n")
    result = run_in_process("summarize", "--jsonl", str(lines), cwd=tmp_path)
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in records] == ["a", "b"]
    assert all(1 <= len(r["summary"]) <= 3 for r in records)


def test_summarize_of_a_missing_file_is_one_line(tmp_path: Path) -> None:
    result = run_in_process("summarize", "nope.txt", cwd=tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and "nope.txt" in result.stderr
    assert "Traceback" not in result.stderr


def test_summarize_jsonl_problems_are_one_line_naming_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "number.jsonl").write_text('{"id": "a", "text": 5}\n')
    (tmp_path / "latin1.jsonl").write_bytes(b'{"id": "a", "text": "caf\xe9"}\n')
    expected = {
        "missing.jsonl": "missing.jsonl: cannot read: No such file or directory",
        "number.jsonl": 'number.jsonl:1: expected a JSON object with "id" and "text"',
        "latin1.jsonl": "latin1.jsonl:1: not UTF-8 text",
    }
    for name, message in expected.items():
        result = run_in_process("summarize", "--jsonl", name, cwd=tmp_path)
        assert result.returncode == 1
        assert result.stderr == f"digest: {message}\n"


def test_summarize_with_an_unknown_algorithm_is_a_usage_error(tmp_path: Path) -> None:
    result = run_in_process("summarize", "--algorithm", "bogus", str(SEED), cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown algorithm 'bogus'" in result.stderr and "internal error" not in result.stderr


def test_check_says_what_is_enabled(project: Project) -> None:
    result = invoke(project, "check")
    assert result.returncode == 0
    assert "source seeds: files" in result.stdout
    assert "digest daily" in result.stdout
    assert "not available" not in result.stdout
    project.config.write_text(
        project.config.read_text() + '\n[[sources]]\nname = "letters"\ntype = "mailbox"\naddress = "news@digest.local"\n'
    )
    with_mailbox = invoke(project, "check")
    assert with_mailbox.returncode == 0
    assert "source letters: mailbox news@digest.local" in with_mailbox.stdout
    assert "warning: source letters: address news@digest.local has no random part" in with_mailbox.stderr


CHECK_AND_COUNT_MODULES = """
import sys
from digest import config, pipeline

pipeline.check_templates(config.load(sys.argv[1]))
print(sorted(name for name in ("numpy", "wordfreq") if name in sys.modules))
"""


def test_checking_the_templates_loads_no_story_grouping(project: Project, tmp_path: Path) -> None:
    """`digest check`, and every run and daemon start, render the templates with a one-article sample edition: a lone
    article is its own story, so numpy and the word list (about 0.35 CPU s) are not loaded for it."""
    result = subprocess.run(
        [sys.executable, "-c", CHECK_AND_COUNT_MODULES, str(project.config)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_config_lookup_uses_digest_config_env_then_the_default(project: Project) -> None:
    by_env = run_in_process("check", cwd=project.root.parent, env={"DIGEST_CONFIG": str(project.config)})
    assert by_env.returncode == 0 and "digest daily" in by_env.stdout
    by_default = run_in_process("check", cwd=project.root)
    assert by_default.returncode == 0 and "digest daily" in by_default.stdout


def test_an_article_in_a_language_without_a_stemmer_is_summarised_and_the_report_says_so(project: Project) -> None:
    from test_summarise import HINDI

    (project.root / "seeds" / "hindi.txt").write_text("शिक्षा नीति\n\n" + HINDI, encoding="utf-8")
    result = invoke(project, "run", "--json")
    assert result.returncode == 0, result.stderr
    (seeds,) = json.loads(result.stdout)["sources"]
    assert seeds["new_articles"] == 2
    assert any("शिक्षा नीति" in note and "by position" in note for note in seeds["notes"])
    text = next((project.out / "daily").glob("*.txt")).read_text(encoding="utf-8")
    assert "भारत सरकार ने बुधवार" in text


def test_a_mailbox_source_with_no_mail_yet_polls_empty_beside_the_other_sources(project: Project) -> None:
    text = project.config.read_text(encoding="utf-8").replace('sources = ["seeds"]', 'sources = ["seeds", "letters"]')
    project.config.write_text(text + '\n[[sources]]\nname = "letters"\ntype = "mailbox"\naddress = "news@digest.local"\n')
    result = invoke(project, "run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "source letters: 0 new" in result.stdout and "failed" not in result.stdout
    assert "Traceback" not in result.stderr and "internal error" not in result.stdout
    assert HEADLINE in next(p for p in edition_files(project) if p.suffix == ".txt").read_text()


def test_an_edition_whose_template_fails_is_delivered_once_the_template_is_fixed(project: Project) -> None:
    theme = project.root / "theme"
    theme.mkdir()
    # fails only on the real article, so the sample edition that check_templates renders passes it
    (theme / "digest.txt").write_text(
        "{% for s in sections %}{% for a in s.articles %}{% if 'Putin' in a.title %}"
        "{{ no_such_variable }}{% endif %}{% endfor %}{% endfor %}\n"
    )
    text = project.config.read_text(encoding="utf-8")
    project.config.write_text(text.replace('name = "daily"', 'name = "daily"\ntemplates = "../theme"'), encoding="utf-8")
    broken = invoke(project, "run", "--json")
    assert broken.returncode == 1
    deliveries = {d["channel"]: d for d in json.loads(broken.stdout)["deliveries"]}
    delivery = deliveries["files"]
    assert delivery["status"] == "pending" and "no_such_variable" in delivery["error"]
    assert deliveries["archive"]["status"] == "delivered"  # the archive's own page and feed
    assert edition_files(project) == []
    (theme / "digest.txt").unlink()  # back to the packaged theme
    fixed = invoke(project, "run", "--json", now="2026-11-27T08:00:00+00:00")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert [(d["channel"], d["status"]) for d in json.loads(fixed.stdout)["deliveries"]] == [("files", "delivered")]
    assert HEADLINE in next(p for p in edition_files(project) if p.suffix == ".txt").read_text()


def test_a_subject_or_template_that_does_not_compile_is_a_config_error_before_any_edition(project: Project) -> None:
    text = project.config.read_text(encoding="utf-8")
    project.config.write_text(
        text.replace('name = "daily"', 'name = "daily"\nsubject = "{{ digest.name }: {{ edition.date }}"'), encoding="utf-8"
    )
    for command in (["check"], ["run"]):
        result = invoke(project, *command)
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr.startswith(
            f"digest: config error: {project.config}: digests[0] (daily): subject template '{{{{ digest.name }}: "
        )
        assert len(result.stderr.splitlines()) == 1
    assert edition_files(project) == []
    theme = project.root / "theme"
    theme.mkdir()
    (theme / "digest.html").write_text("<p>{% for article in %}</p>\n")
    project.config.write_text(text.replace('name = "daily"', 'name = "daily"\ntemplates = "../theme"'), encoding="utf-8")
    result = invoke(project, "check")
    assert result.returncode == 2 and "digests[0] (daily): template digest.html: " in result.stderr


@pytest.mark.parametrize("waiting", ["preview", "run"])
def test_a_run_writes_to_the_store_while_another_command_waits_on_a_slow_feed(
    project: Project, http_server: LocalServer, waiting: str
) -> None:
    """Neither a preview nor a run holds the store's write lock while it waits on the network
    (a run commits its batch of writes first): a daemon's job (here a run) goes on meanwhile."""
    asked, answer = threading.Event(), threading.Event()

    def slow_feed(request: RequestHandler) -> None:
        asked.set()
        answer.wait(30)
        request.respond(200, b"<rss version='2.0'><channel><title>Slow</title></channel></rss>", "application/rss+xml")

    project.write_config(f"""
        [store]
        path = "../state/digest.sqlite3"

        [fetch]
        allow_private = true

        [[sources]]
        name = "seeds"
        type = "files"
        path = "../seeds"

        [[sources]]
        name = "slow"
        type = "feed"
        url = "{http_server.route("/slow.xml", slow_feed)}"

        [[digests]]
        name = "everything"
        output_dir = "../out"

        [[digests]]
        name = "quick"
        sources = ["seeds"]
        output_dir = "../out"
        """)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    environment.update(PYTHONPATH=str(REPO), DIGEST_NOW="2026-11-27T07:00:00+00:00")
    slow = subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(project.config), waiting, "--digest", "everything"],
        cwd=project.root,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert asked.wait(60), f"the {waiting} never polled the slow feed"
        run = invoke(project, "run", "--digest", "quick")
        assert run.returncode == 0, run.stderr
        assert len(list((project.out / "quick").glob("[0-9]*.html"))) == 1
    finally:
        answer.set()
        shown, _ = slow.communicate(timeout=60)
    assert slow.returncode == 0
    assert HEADLINE in (shown if waiting == "preview" else next((project.out / "everything").glob("*.txt")).read_text())


def test_summarize_jsonl_reports_each_bad_line_and_goes_on(tmp_path: Path) -> None:
    """Issue 11 item 17: it stopped at the first bad line; now every bad line is one stderr line
    (file:line), every good line is summarised, and the exit code is 1 at the end."""
    text = SEED.read_text()
    lines = [
        json.dumps({"id": "first", "text": text}).encode(),
        b"{not json",
        json.dumps({"id": "no-text"}).encode(),
        b'{"id": "latin1", "text": "caf\xe9"}',
        b"",
        json.dumps({"id": "last", "text": text, "title": "T"}).encode(),
    ]
    (tmp_path / "mixed.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    result = run_in_process("summarize", "--jsonl", "mixed.jsonl", cwd=tmp_path)
    assert result.returncode == 1
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["first", "last"]
    assert result.stderr.splitlines() == [
        'digest: mixed.jsonl:2: expected a JSON object with "id" and "text"',
        'digest: mixed.jsonl:3: expected a JSON object with "id" and "text"',
        "digest: mixed.jsonl:4: not UTF-8 text",
    ]
    from_stdin = run_in_process(
        "summarize", "--jsonl", "-", cwd=tmp_path, stdin="{not json\n" + json.dumps({"id": "x", "text": text}) + "\n"
    )
    assert from_stdin.returncode == 1 and [json.loads(line)["id"] for line in from_stdin.stdout.splitlines()] == ["x"]
    assert from_stdin.stderr == 'digest: stdin:1: expected a JSON object with "id" and "text"\n'
