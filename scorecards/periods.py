"""Days and months as the lender counts them: Beijing time (UTC+8), as management/points.py
bounds its months. A period is (start, end): aware datetimes, end excluded."""
import datetime as dt
import re
from workflows.clock import BEIJING

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def day_bounds(day):
    start = dt.datetime.combine(day, dt.time(), BEIJING)
    return start, start + dt.timedelta(days=1)


def month_first(text, default):
    """'2026-03' → date(2026, 3, 1); `default` (a date in the month) when empty; ValueError
    when it is not a month."""
    if not text:
        return default.replace(day=1)
    found = _MONTH.match(text.strip())
    if not found or not 1 <= int(found.group(2)) <= 12 or not 1900 <= int(found.group(1)) <= 2200:
        raise ValueError(text)
    return dt.date(int(found.group(1)), int(found.group(2)), 1)


def next_month(first):
    return (first + dt.timedelta(days=32)).replace(day=1)


def previous_month(first):
    return (first - dt.timedelta(days=1)).replace(day=1)


def month_bounds(first):
    start = dt.datetime.combine(first, dt.time(), BEIJING)
    return start, dt.datetime.combine(next_month(first), dt.time(), BEIJING)


def parse_day(text, default):
    if not text:
        return default
    day = dt.date.fromisoformat(text.strip())
    if not 1900 <= day.year <= 2200:
        raise ValueError(text)
    return day
