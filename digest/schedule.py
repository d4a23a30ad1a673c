"""A digest's `schedule` setting, parsed and checked without APScheduler.

Two forms: a cron expression of five fields ("0 7 * * 1-5"), read as in
crontab(5), or an interval ("every 30s", "every 6h"). config.py calls
`parse_schedule` so a bad schedule is a ConfigError at load time; scheduler.py
turns the result into APScheduler triggers. Kept free of third-party imports so
that loading a config stays fast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

_EVERY = re.compile(r"^every\s+(\d+)\s*(s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Longer intervals would carry the next run past the year 9999 (OverflowError in datetime arithmetic).
LONGEST_INTERVAL = timedelta(days=36500)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (name, lowest, highest, names for the values from `lowest` on)
_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _WEEKDAYS + ("sun",)),
)


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: either `every` (an interval) or five cron fields.

    Cron fields are normalised to explicit number lists ("*" kept as is), with
    the day of week in crontab numbering (0 = Sunday, 7 folded into 0).
    """

    text: str
    every: timedelta | None = None
    cron: tuple[str, str, str, str, str] | None = None

    @property
    def fixed_hour(self) -> bool:
        """True when the cron hour field names hours rather than '*' or a step over all hours."""
        return self.cron is not None and not self.text.split()[1].startswith("*")

    @property
    def day_or_weekday(self) -> bool:
        """True when both day-of-month and day-of-week are restricted: crontab fires on either."""
        fields = self.text.split()
        return self.cron is not None and not fields[2].startswith("*") and not fields[4].startswith("*")


def parse_schedule(text: str) -> Schedule:
    """Parse "every 6h" or a five-field cron expression; ValueError says what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError('expected a cron expression such as "0 7 * * *" or an interval such as "every 6h"')
    cleaned = " ".join(text.split()).lower()
    if cleaned.startswith("every"):
        match = _EVERY.match(cleaned)
        if not match:
            raise ValueError(f'expected an interval such as "every 30s", "every 30m", "every 6h" or "every 1d", got {text!r}')
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        if seconds < 1:
            raise ValueError(f"interval must be at least one second, got {text!r}")
        if seconds > LONGEST_INTERVAL.total_seconds():
            raise ValueError(f"interval must be at most {LONGEST_INTERVAL.days}d, got {text!r}")
        return Schedule(text=cleaned, every=timedelta(seconds=seconds))
    parts = cleaned.split(" ")
    if len(parts) != 5:
        raise ValueError(
            f'expected five cron fields (minute hour day-of-month month day-of-week) or "every <n><s|m|h|d>", '
            f"got {len(parts)} field(s) in {text!r}"
        )
    normalised = tuple(_cron_field(part, *spec) for part, spec in zip(parts, _FIELDS))
    schedule = Schedule(text=cleaned, cron=normalised)  # type: ignore[arg-type]
    if not schedule.day_or_weekday and not _some_day_matches(*normalised[2:]):
        raise ValueError(
            f"{text!r} never fires: no date has that day of month in that month"
            f"{'' if normalised[4] == '*' else ' on that day of week'}"
        )
    return schedule


def _some_day_matches(days: str, months: str, weekdays: str) -> bool:
    """True when some date has a day, month and weekday (0 = Sunday) from these cron fields.

    28 years from a leap year hold every date of the year on every weekday (Feb 29 included)."""

    def values(field: str, everything: range) -> set[int]:
        return set(everything) if field == "*" else {int(v) for v in field.split(",")}

    day_set, month_set, weekday_set = values(days, range(1, 32)), values(months, range(1, 13)), values(weekdays, range(7))
    for year in range(2000, 2028):
        for month in month_set:
            for day in day_set:
                try:
                    weekday = date(year, month, day).isoweekday() % 7
                except ValueError:  # no such day in that month
                    continue
                if weekday in weekday_set:
                    return True
    return False


def _cron_field(text: str, name: str, lowest: int, highest: int, names: tuple[str, ...]) -> str:
    """One cron field as a sorted comma list of numbers, or "*"; ValueError names the field."""
    if text == "*":
        return "*"
    values: set[int] = set()
    for item in text.split(","):
        values |= _cron_item(item, name, lowest, highest, names)
    if name == "day of week" and 7 in values:
        values = (values - {7}) | {0}
    return ",".join(str(v) for v in sorted(values))


def _cron_item(item: str, name: str, lowest: int, highest: int, names: tuple[str, ...]) -> set[int]:
    """The values one comma-separated cron item stands for: "*/5", "1-5", "mon-fri/2", "7"."""
    span, _, step_text = item.partition("/")
    step = 1
    if step_text:
        if not step_text.isdigit() or int(step_text) < 1:
            raise ValueError(f"{name}: bad step {step_text!r} in {item!r}")
        step = int(step_text)
    if span == "*":
        start, end = lowest, highest
    else:
        first, dash, last = span.partition("-")
        start = _cron_value(first, item, name, lowest, highest, names)
        end = _cron_value(last, item, name, lowest, highest, names) if dash else (highest if step_text else start)
        if start > end:
            raise ValueError(f"{name}: range {item!r} runs backwards")
    return set(range(start, end + 1, step))


def _cron_value(text: str, item: str, name: str, lowest: int, highest: int, names: tuple[str, ...]) -> int:
    """One number or name in a cron field, checked against the field's range."""
    if text in names:
        return names.index(text) + lowest
    if not text.isdigit():
        raise ValueError(f"{name}: {text!r} in {item!r} is not a number{' or a name' if names else ''}")
    value = int(text)
    if not lowest <= value <= highest:
        raise ValueError(f"{name}: {value} is outside {lowest}-{highest}")
    return value
