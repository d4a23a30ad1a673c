"""Config errors: exit 2 and one line naming the file, the key and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Project
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
    result = project.cli("check")
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
        (GOOD + "\n[summary]\nsentences = \"three\"\n", ["summary.sentences", "whole number"]),
        (GOOD + "\n[summary]\nalgorithm = \"magic\"\n", ["summary.algorithm", "magic"]),
        (GOOD.replace('name = "daily"', 'name = "daily"\ntimezone = "Mars/Olympus"'), ["digests[0].timezone"]),
        (GOOD.replace('name = "daily"', 'name = "daily"\nsources = ["nope"]'), ["digests[0].sources", "nope"]),
        (GOOD + "\n[fetch]\ntimeout = \"soon\"\n", ["fetch.timeout", "duration"]),
        (GOOD + "\n[fetch]\ntimeout = \"99999999999d\"\n", ["fetch.timeout", "out of range"]),
        (GOOD + "\n[fetch]\ntimeout = 1e400\n", ["fetch.timeout", "out of range"]),
        (GOOD.replace('name = "daily"', 'name = "daily"\nschedule = "every 99999999999d"'), ["digests[0].schedule", "at most 36500d"]),
        (GOOD.replace('path = "../seeds"', 'path = "../seeds"\ninterval = "9999999d"'), ["sources[0].interval", "at most 36500d"]),
        (GOOD + "\n[summary]\nworkers = -1\n", ["summary.workers", '"auto" or a number from 0 to 256']),
        (GOOD + "\n[summary]\nworkers = \"many\"\n", ["summary.workers", "many"]),
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


@pytest.mark.parametrize(("line", "workers"), [("", "auto"), ('workers = "auto"', "auto"), ("workers = 3", 3), ("workers = 0", 0)])
def test_summary_workers_is_auto_or_a_count(project: Project, line: str, workers: object) -> None:
    loaded = config.load(project.write_config(GOOD + f"\n[summary]\n{line}\n"))
    assert loaded.summary.workers == workers
