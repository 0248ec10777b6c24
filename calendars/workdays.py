"""Chinese statutory working days.

Backed by the `chinese-calendar` package for the years it knows. A date outside those
years raises CalendarUnknown instead of silently counting weekends only (DOMAIN.md §4).
"""
import datetime as dt

import chinese_calendar


class CalendarUnknown(ValueError):
    """The working-day calendar of this year has not been published or entered."""

    def __init__(self, year):
        super().__init__(f"working-day calendar unknown for year {year}")
        self.year = year


def _as_date(value):
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    return value


def is_working_day(day):
    day = _as_date(day)
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        raise CalendarUnknown(day.year) from None


def add_working_days(day, n):
    """The date n working days after `day` (n may be negative)."""
    day = _as_date(day)
    step = 1 if n >= 0 else -1
    remaining = abs(n)
    while remaining:
        day += dt.timedelta(days=step)
        if is_working_day(day):
            remaining -= 1
    return day


def subtract_working_days(day, n):
    return add_working_days(day, -n)
