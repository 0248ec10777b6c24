"""Entering and removing holidays and make-up working days; each is one transaction, audited.

Entered days override the `chinese-calendar` package and make a year the package does not
know (the next one, published by the State Council around November) known (DOMAIN.md §4).
"""
import datetime as dt
import importlib
import re
from dataclasses import dataclass, field

from flask import current_app

from audit.operations import record
from calendars.models import CalendarDay, CalendarYear
from calendars.workdays import clear_cache, entered_days, package_knows
from extensions import db
from workflows import clock
from workflows.errors import InvalidData, NotFound

NOTE_MAX = 120  # CalendarDay.note
# A range longer than this is more likely a typo than a holiday.
MAX_RANGE_DAYS = 31
MAX_DAYS = 366


class CalendarInputError(InvalidData):
    """Bad input; `code` and `params` let a page say it in the user's language."""

    def __init__(self, message, code, **params):
        super().__init__(message, code=code)
        self.params = params


@dataclass
class EnterResult:
    days: list
    years: list
    retried: object = None          # what retry_calendar_problems returned, if it ran
    retry_error: str | None = None  # it raised: the days are saved, the problems stay open
    changed: list = field(default_factory=list)


def parse_dates(values):
    """Dates from strings: 'YYYY-MM-DD' or a range 'YYYY-MM-DD..YYYY-MM-DD', separated by
    spaces, commas or new lines; date objects pass through. Every bad token is reported at
    once and nothing is returned for a partly bad input. Sorted, without duplicates."""
    if isinstance(values, (str, dt.date)):
        values = [values]
    tokens = []
    for value in values:
        if isinstance(value, dt.date):
            tokens.append(value)
        else:
            tokens += [t for t in re.split(r"[\s,，、;；]+", str(value)) if t]
    days, bad, too_long = set(), [], []
    for token in tokens:
        if isinstance(token, dt.datetime):
            days.add(token.date())
            continue
        if isinstance(token, dt.date):
            days.add(token)
            continue
        try:
            if ".." in token:
                first, last = (dt.date.fromisoformat(p) for p in token.split("..", 1))
                span = (last - first).days
                if span < 0:
                    raise ValueError(token)
                if span >= MAX_RANGE_DAYS:
                    too_long.append(token)
                    continue
                days.update(first + dt.timedelta(days=i) for i in range(span + 1))
            else:
                days.add(dt.date.fromisoformat(token))
        except ValueError:
            bad.append(token)
    if bad:
        raise CalendarInputError(f"not a date (YYYY-MM-DD) or range (A..B): {', '.join(bad)}",
                                 "bad_dates", values=", ".join(bad))
    if too_long:
        raise CalendarInputError(
            f"a range may span at most {MAX_RANGE_DAYS} days: {', '.join(too_long)}",
            "range_too_long", values=", ".join(too_long), max=MAX_RANGE_DAYS)
    if not days:
        raise CalendarInputError("no date given", "no_dates")
    if len(days) > MAX_DAYS:
        raise CalendarInputError(f"at most {MAX_DAYS} days at once", "too_many_days",
                                 max=MAX_DAYS)
    return sorted(days)


def enter_days(days, is_working, note, actor):
    """Enter `days` as holidays (is_working False) or make-up working days (True), replacing
    any earlier entry of the same day; commits, then lets the reminders blocked by a missing
    year retry (monitoring.reminders.retry_calendar_problems, once it exists)."""
    days = parse_dates(days)
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise CalendarInputError(f"the note is longer than {NOTE_MAX} characters",
                                 "note_too_long", max=NOTE_MAX)
    is_working = bool(is_working)
    actor_id = getattr(actor, "id", None)
    changed = []
    for day in days:
        row = db.session.get(CalendarDay, day)
        if row is None:
            db.session.add(CalendarDay(day=day, is_working=is_working, note=note,
                                       entered_by_id=actor_id, entered_at=clock.now()))
        else:
            if row.is_working != is_working or row.note != note:
                changed.append({"date": day.isoformat(), "was_working": row.is_working,
                                "note": row.note})
            row.is_working, row.note = is_working, note
            row.entered_by_id, row.entered_at = actor_id, clock.now()
    years = sorted({d.year for d in days})
    record("calendar.days_entered", actor=actor,
           data={"dates": [d.isoformat() for d in days], "is_working": is_working,
                 "note": note, "replaced": changed})
    return _commit_and_retry(EnterResult(days=days, years=years, changed=changed), actor)


def complete_year(year, note, actor):
    """Declare a year the package does not know complete: its holidays and make-up days are
    all entered, so its working days may be counted from now on. Commits, then lets the
    reminders and inspections blocked by the year retry."""
    if package_knows(year):
        raise CalendarInputError(f"{year} comes from the statutory calendar package",
                                 "year_from_package", year=year)
    if db.session.get(CalendarYear, year) is not None:
        raise CalendarInputError(f"{year} is already complete", "year_complete", year=year)
    if not entered_days(year):
        raise CalendarInputError(f"enter the holidays and make-up days of {year} first",
                                 "year_empty", year=year)
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise CalendarInputError(f"the note is longer than {NOTE_MAX} characters",
                                 "note_too_long", max=NOTE_MAX)
    db.session.add(CalendarYear(year=year, note=note, completed_at=clock.now(),
                                completed_by_id=getattr(actor, "id", None)))
    record("calendar.year_completed", actor=actor,
           data={"year": year, "note": note, "entered_days": len(entered_days(year))})
    return _commit_and_retry(EnterResult(days=[], years=[year]), actor)


def _commit_and_retry(result, actor):
    """Commit the calendar change, then let the reminders and inspections blocked by its
    years retry; a failure there leaves the change saved and the problems open."""
    db.session.commit()
    clear_cache()
    try:
        result.retried = _retry_calendar_problems(result.years, actor)
        db.session.commit()
    except Exception as exc:  # the change is saved; the problems stay open and visible
        db.session.rollback()
        current_app.logger.exception("retry_calendar_problems(%s) failed", result.years)
        result.retry_error = f"{type(exc).__name__}: {exc}"
    clear_cache()
    return result


def reopen_year(year, actor):
    """Take back a year's completeness (e.g. a holiday was missed): its working days are not
    counted again until it is declared complete. Commits."""
    row = db.session.get(CalendarYear, year)
    if row is None:
        raise NotFound(f"{year} was not declared complete", code="year_not_complete")
    record("calendar.year_reopened", actor=actor, data={"year": year})
    db.session.delete(row)
    db.session.commit()
    clear_cache()


def _retry_calendar_problems(years, actor):
    try:
        module = importlib.import_module("monitoring.reminders")
    except ModuleNotFoundError as exc:
        if exc.name != "monitoring.reminders":
            raise
        return None
    hook = getattr(module, "retry_calendar_problems", None)
    return hook(years, actor) if hook is not None else None


def remove_day(day, actor):
    """Remove an entered day: the package (or, for a year it does not know, the weekend
    rule) decides it again. Commits."""
    if isinstance(day, dt.datetime):
        day = day.date()
    elif not isinstance(day, dt.date):
        try:
            day = dt.date.fromisoformat(str(day).strip())
        except ValueError:
            raise CalendarInputError(f"not a date (YYYY-MM-DD): {day}", "bad_dates",
                                     values=str(day)) from None
    row = db.session.get(CalendarDay, day)
    if row is None:
        raise NotFound(f"{day.isoformat()} was not entered", code="day_not_entered")
    record("calendar.day_removed", actor=actor,
           data={"date": day.isoformat(), "was_working": row.is_working, "note": row.note})
    db.session.delete(row)
    db.session.commit()
    clear_cache()
    return row
