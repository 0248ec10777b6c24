"""Chinese statutory working days.

Backed by the `chinese-calendar` package for the years it knows, overridden by the days an
administrator entered (calendars.models.CalendarDay: is_working False = holiday, True =
make-up working day). A year is known when the package knows it, or when an administrator
declared it complete (calendars.models.CalendarYear) after entering its holidays and make-up
days; a date in any other year raises CalendarUnknown instead of silently counting weekends
only (DOMAIN.md §4) — a year with only some days entered is still unknown.

Inside an app context the entered days of a year are loaded with one query and memoized per
app for CALENDAR_CACHE_SECONDS (default 30): every new task's due date needs them, and they
change a few times a year. calendars.operations clears the memo of its own process when it
changes the days; other processes (web workers, the worker) see the change within that many
seconds (the worker also clears it at every sweep). Outside an app context only the package
is used.
"""
import datetime as dt
import time

import chinese_calendar
from flask import current_app, has_app_context

CACHE_SECONDS = 30
# The package raises NotImplementedError outside [min year, max year] of its holidays table.
PACKAGE_YEARS = range(min(chinese_calendar.holidays).year,
                      max(chinese_calendar.holidays).year + 1)


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


def package_knows(year):
    return year in PACKAGE_YEARS


def _memo():
    """This app's memo {"days": {year: {date: is_working}}, "complete": set | None}, renewed
    when older than CALENDAR_CACHE_SECONDS."""
    now = time.monotonic()
    memo = current_app.extensions.get("calendar_memo")
    ttl = current_app.config.get("CALENDAR_CACHE_SECONDS", CACHE_SECONDS)
    if memo is None or now - memo["at"] > ttl:
        memo = current_app.extensions["calendar_memo"] = {"at": now, "days": {},
                                                          "complete": None, "working": {}}
    return memo


def entered_days(year):
    """{date: is_working} entered for `year` (memoized, see above); {} outside an app."""
    if not has_app_context():
        return {}
    cache = _memo()["days"]
    if year not in cache:
        from calendars.models import CalendarDay
        from extensions import db
        # No autoflush: this runs in the middle of other operations (task projection,
        # scripts) and only reads its own table.
        with db.session.no_autoflush:
            rows = db.session.execute(
                db.select(CalendarDay.day, CalendarDay.is_working)
                .where(CalendarDay.day >= dt.date(year, 1, 1),
                       CalendarDay.day <= dt.date(year, 12, 31))).all()
        cache[year] = {day: is_working for day, is_working in rows}
    return cache[year]


def declared_complete(year):
    """Whether an administrator declared `year` complete (memoized, see above)."""
    if not has_app_context():
        return False
    memo = _memo()
    if memo["complete"] is None:
        from calendars.models import CalendarYear
        from extensions import db
        with db.session.no_autoflush:
            memo["complete"] = set(db.session.scalars(db.select(CalendarYear.year)))
    return year in memo["complete"]


def entered_rows(year):
    """The CalendarDay rows of `year` (not memoized; for display)."""
    from calendars.models import CalendarDay
    return (CalendarDay.query.filter(CalendarDay.day >= dt.date(year, 1, 1),
                                     CalendarDay.day <= dt.date(year, 12, 31))
            .order_by(CalendarDay.day).all())


def clear_cache():
    """Forget the memoized entered days (after entering or removing days)."""
    if has_app_context():
        current_app.extensions.pop("calendar_memo", None)


def year_source(year):
    """'package'; 'entered' (not in the package, declared complete: known from entered
    days); 'incomplete' (days entered, not yet declared complete: still unknown) or
    'unknown'. A package year may still have entered days overriding it: entered_days()."""
    if package_knows(year):
        return "package"
    if declared_complete(year):
        return "entered"
    return "incomplete" if entered_days(year) else "unknown"


def is_working_day(day):
    day = _as_date(day)
    if not has_app_context():
        return _is_working_day(day)
    # Memoized with the entered days: every new task's due date asks for the same few days.
    known = _memo()["working"]
    if day not in known:
        known[day] = _is_working_day(day)
    return known[day]


def _is_working_day(day):
    overrides = entered_days(day.year)
    if day in overrides:
        return overrides[day]
    if package_knows(day.year):
        return chinese_calendar.is_workday(day)
    if declared_complete(day.year):
        # A completed year: its holidays and make-up days are the entered ones.
        return day.weekday() < 5
    raise CalendarUnknown(day.year)


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


def holiday_name(day):
    """The package's (English, Chinese) name of a holiday or make-up day, or None."""
    if not package_knows(day.year):
        return None
    _, name = chinese_calendar.get_holiday_detail(day)  # make-up days carry it too
    if not name:
        return None
    try:
        return name, chinese_calendar.Holiday(name).chinese
    except ValueError:
        return name, name


def non_standard_days(year):
    """The days of `year` that differ from 'weekdays work, weekends rest', plus every
    entered day (even one that changes nothing, so it can be seen and removed).

    A list of dicts ordered by date: day, is_working, source ('package' | 'entered'),
    package_value (what the package says of an entered day; None when it does not know the
    year), name (the package's (English, Chinese) holiday name or None), row (the
    CalendarDay of an entered day, else None)."""
    entered = entered_days(year)
    rows = {row.day: row for row in entered_rows(year)} if entered else {}
    days = {}
    if package_knows(year):
        for day in set(chinese_calendar.holidays) | set(chinese_calendar.workdays):
            if day.year != year:
                continue
            working = chinese_calendar.is_workday(day)
            if working != (day.weekday() < 5):
                days[day] = {"day": day, "is_working": working, "source": "package",
                             "package_value": None, "name": holiday_name(day), "row": None}
    for day, working in entered.items():
        package_value = chinese_calendar.is_workday(day) if package_knows(year) else None
        days[day] = {"day": day, "is_working": working, "source": "entered",
                     "package_value": package_value, "name": holiday_name(day),
                     "row": rows.get(day)}
    return [days[d] for d in sorted(days)]
