"""The `schedule` setting: parsed without APScheduler, bad ones refused at config load."""

from datetime import timedelta
from pathlib import Path

import pytest

from digest import config
from digest.errors import ConfigError
from digest.schedule import parse_schedule


@pytest.mark.parametrize(
    ("text", "every"),
    [("every 30s", 30), ("every 6h", 6 * 3600), ("every 2 m", 120), ("Every 1d", 86400)],
)
def test_intervals(text: str, every: int) -> None:
    assert parse_schedule(text).every == timedelta(seconds=every)


def test_cron_fields_normalised_to_crontab_numbers() -> None:
    schedule = parse_schedule("*/20 7 1,15 jan-mar mon-fri")
    assert schedule.cron == ("0,20,40", "7", "1,15", "1,2,3", "1,2,3,4,5")


def test_sunday_is_zero_or_seven() -> None:
    assert parse_schedule("0 7 * * 7").cron[4] == "0"
    assert parse_schedule("0 7 * * 5-7").cron[4] == "0,5,6"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("0 7 * *", "five cron fields"),
        ("61 7 * * *", "minute: 61 is outside 0-59"),
        ("0 24 * * *", "hour: 24 is outside 0-23"),
        ("0 7 0 * *", "day of month: 0 is outside 1-31"),
        ("0 7 * 13 *", "month: 13 is outside 1-12"),
        ("0 7 * * fri-mon", "runs backwards"),
        ("0 7 * * funday", "not a number or a name"),
        ("*/0 7 * * *", "bad step"),
        ("every 0s", "at least one second"),
        ("every week", "every 30s"),
        ("", "cron expression"),
    ],
)
def test_bad_schedules_say_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_schedule(text)


def test_bad_schedule_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "digest.toml"
    path.write_text('[[digests]]\nname = "daily"\nschedule = "0 25 * * *"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert caught.value.key == "digests[0].schedule"
    assert "hour: 25 is outside 0-23" in str(caught.value)


def test_a_source_interval_under_a_second_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "digest.toml"
    path.write_text(f'[[sources]]\nname = "news"\npath = "{tmp_path}"\ninterval = "0s"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert caught.value.key == "sources[0].interval"


def test_the_cli_and_config_load_without_apscheduler(tmp_path: Path) -> None:
    """`digest --help` and config loading stay fast: APScheduler is imported only by the daemon and status."""
    import subprocess
    import sys

    from conftest import REPO

    path = tmp_path / "digest.toml"
    path.write_text('[[digests]]\nname = "daily"\nschedule = "every 6h"\noutput_dir = "out"\n', encoding="utf-8")
    code = f"import sys, digest.cli, digest.config; digest.config.load({str(path)!r}); print(sorted(m for m in sys.modules if m.startswith('apscheduler')))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
