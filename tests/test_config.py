"""Config errors: exit 2 and one line naming the file, the key and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Project
from tests.inprocess import invoke
from digest import config
from digest.errors import ConfigError

GOOD = """
[store]
path = "../state/digest.sqlite3"

[[sources]]
name = "seeds"
type = "files"
path = "../seeds"

[[digests]]
name = "daily"
output_dir = "../out"
"""


def one_line_error(project: Project) -> str:
    result = invoke(project, "check")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(project.config.name) in lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[store\npath = 1", ["not valid TOML"]),
        (GOOD + "\n[summary]\nsentnces = 3\n", ["summary.sentnces", "unknown key"]),
        (GOOD.replace('type = "files"', 'type = "carrier-pigeon"'), ["sources[0].type", "carrier-pigeon"]),
        (GOOD.replace('type = "files"', 'type = ["files"]'), ["sources[0].type", "unknown source type"]),
        (GOOD.replace('path = "../seeds"', 'path = "../no-such-folder"'), ["sources[0].path", "not found"]),
        (GOOD + '\n[summary]\nsentences = "three"\n', ["summary.sentences", "whole number"]),
        (GOOD + '\n[summary]\nalgorithm = "magic"\n', ["summary.algorithm", "magic"]),
        (GOOD.replace('name = "daily"', 'name = "daily"\ntimezone = "Mars/Olympus"'), ["digests[0].timezone"]),
        (GOOD.replace('name = "daily"', 'name = "daily"\nsources = ["nope"]'), ["digests[0].sources", "nope"]),
        (GOOD + '\n[fetch]\ntimeout = "soon"\n', ["fetch.timeout", "duration"]),
        (GOOD + '\n[fetch]\ntimeout = "99999999999d"\n', ["fetch.timeout", "out of range"]),
        (GOOD + "\n[fetch]\ntimeout = 1e400\n", ["fetch.timeout", "out of range"]),
        (
            GOOD.replace('name = "daily"', 'name = "daily"\nschedule = "every 99999999999d"'),
            ["digests[0].schedule", "at most 36500d"],
        ),
        (
            GOOD.replace('path = "../seeds"', 'path = "../seeds"\ninterval = "9999999d"'),
            ["sources[0].interval", "at most 36500d"],
        ),
        (GOOD + "\n[summary]\nworkers = -1\n", ["summary.workers", '"auto" or a number from 0 to 256']),
        (GOOD + '\n[summary]\nworkers = "many"\n', ["summary.workers", "many"]),
    ],
)
def test_bad_config_exits_2_with_one_line_naming_file_and_key(project: Project, text: str, words: list[str]) -> None:
    project.write_config(text)
    line = one_line_error(project)
    for word in words:
        assert word in line


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    project = Project(tmp_path)
    line = one_line_error(project)
    assert "not found" in line


def test_relative_paths_resolve_against_the_config_folder(project: Project) -> None:
    loaded = config.load(project.write_config(GOOD))
    assert loaded.store.path == (project.root / "state" / "digest.sqlite3").resolve()
    assert loaded.digests[0].output_dir == (project.root / "out").resolve()
    assert loaded.summary.sentences == 3 and loaded.digests[0].formats == ("html", "md", "txt")


def test_durations_and_duplicate_names(project: Project) -> None:
    assert config.parse_duration("30m").total_seconds() == 1800
    assert config.parse_duration("2d").total_seconds() == 172800
    with pytest.raises(ValueError):
        config.parse_duration("soon")
    project.write_config(GOOD + GOOD.split("[[digests]]")[1].join(["\n[[digests]]", ""]))
    with pytest.raises(ConfigError, match="duplicate name"):
        config.load(project.config)


@pytest.mark.parametrize(
    ("line", "workers"), [("", "auto"), ('workers = "auto"', "auto"), ("workers = 3", 3), ("workers = 0", 0)]
)
def test_summary_workers_is_auto_or_a_count(project: Project, line: str, workers: object) -> None:
    loaded = config.load(project.write_config(GOOD + f"\n[summary]\n{line}\n"))
    assert loaded.summary.workers == workers


@pytest.mark.parametrize("command", ["check", "status", "run"])
def test_a_cron_that_never_fires_is_a_config_error_at_load(project: Project, command: str) -> None:
    """Issue 11 item 13: February 31st passed `check`, then `status` and `daemon` failed with an AssertionError."""
    project.write_config(GOOD.replace('name = "daily"', 'name = "daily"\nschedule = "0 0 31 2 *"'))
    result = invoke(project, command)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        f"digest: config error: {project.config}: digests[0].schedule: '0 0 31 2 *' never fires: "
        "no date has that day of month in that month"
    ]


def test_a_cron_that_never_fires_is_refused_by_the_daemon_before_it_starts(project: Project) -> None:
    project.write_config(GOOD.replace('name = "daily"', 'name = "daily"\nschedule = "0 0 31 4,6,9,11 *"'))
    result = project.cli("daemon", timeout=30)
    assert result.returncode == 2 and "digests[0].schedule" in result.stderr and "never fires" in result.stderr
    assert "internal error" not in result.stderr


def test_overlong_path_component_deep_toml_and_year_one_are_usage_errors(project: Project) -> None:
    """Issue 11 item 15: each gave `internal error` (OSError, RecursionError, OverflowError) and exit 1."""
    long_name = "x" * 256
    project.write_config(GOOD.replace('path = "../seeds"', f'path = "../{long_name}"'))
    assert "sources[0].path: a folder or file name in the path is longer than 255 bytes" in one_line_error(project)
    project.write_config(GOOD.replace('path = "../state/digest.sqlite3"', f'path = "../{long_name}/digest.sqlite3"'))
    assert "store.path: a folder or file name in the path is longer than 255 bytes" in one_line_error(project)
    project.write_config(GOOD.replace('name = "daily"', f'name = "{long_name}"'))
    assert "digests[0].name: longer than 255 bytes: it names the digest's folder under output_dir" in one_line_error(project)
    project.write_config(GOOD + "deep = " + "[" * 1000 + "]" * 1000 + "\n")
    assert "not valid TOML: arrays or tables nested too deeply" in one_line_error(project)
    project.write_config(GOOD)
    for command in ("run", "status", "preview"):
        result = invoke(project, command, now="0001-01-01T00:00:00+01:00")
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr.strip().splitlines() == [
            "digest: DIGEST_NOW: '0001-01-01T00:00:00+01:00' is out of range: the year must be from 1970 to 9000"
        ]


def test_a_digest_that_goes_nowhere_is_a_config_error_naming_it(project: Project) -> None:
    """Neither output_dir nor email_to: its editions would consume articles and deliver them nowhere."""
    project.write_config(GOOD.replace('output_dir = "../out"', "") + '\n[[digests]]\nname = "weekly"\noutput_dir = "../out"\n')
    line = one_line_error(project)
    assert "digests[0].output_dir" in line and "'daily'" in line and "neither output_dir nor email_to" in line
    for command in (["run"], ["daemon"]):
        result = project.cli(*command, timeout=30)
        assert result.returncode == 2 and "'daily' has neither output_dir nor email_to" in result.stderr
    assert not (project.root / "state").exists()  # nothing polled, nothing consumed
