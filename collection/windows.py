"""Collection's clock (DOMAIN.md §4): Beijing time, the call windows, and the dates the
collection diagram's timers are set to (a promise checked in the evening, the monthly notice)."""
import calendar
import datetime as dt

from flask_babel import gettext as _

from workflows import clock
from workflows.clock import BEIJING

# DOMAIN.md §4: collection call windows, Beijing time (start, end).
CALL_WINDOWS = ((dt.time(9, 30), dt.time(11, 0)), (dt.time(12, 30), dt.time(13, 30)),
                (dt.time(14, 30), dt.time(15, 30)), (dt.time(19, 0), dt.time(21, 0)))
# A promise is checked on the promised day in the evening; the notice goes out in the morning.
PROMISE_CHECK_TIME = dt.time(18, 0)
NOTICE_TIME = dt.time(10, 0)


def next_call_window(moment=None, include_current=True):
    """The next call window (start, end) as aware Beijing datetimes.

    With include_current, a window that is open at `moment` is returned (one may call now);
    without it, the next window that starts after `moment` (a retry).
    """
    moment = (moment or clock.now()).astimezone(BEIJING)
    day = moment.date()
    for offset in range(3):
        for start, end in CALL_WINDOWS:
            opens = dt.datetime.combine(day + dt.timedelta(days=offset), start, BEIJING)
            closes = dt.datetime.combine(day + dt.timedelta(days=offset), end, BEIJING)
            if moment < opens or (include_current and opens <= moment < closes):
                return opens, closes
    raise AssertionError("unreachable: a window opens every day")


def window_range(opens, closes):
    """'2026-05-08 09:30–11:00', Beijing time, in no language: task data keeps this (the
    form's label says Beijing time in the reader's language)."""
    return f"{opens:%Y-%m-%d %H:%M}–{closes:%H:%M}"


def beijing_time(window):
    """A window_range for a message, marked as Beijing time in the reader's language only."""
    return _("%(window)s (Beijing time)", window=window)


def add_month(day):
    """The same day next month, clamped to the month's end (31 Jan → 28/29 Feb)."""
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def utc_iso(day, time):
    return dt.datetime.combine(day, time, BEIJING).astimezone(dt.timezone.utc).isoformat()
