"""The one source of "now". Tests and `--as-of` runs move it; the engine reads it too."""
import contextlib
import contextvars
import datetime as dt

import SpiffWorkflow.bpmn.specs.event_definitions.timer as _spiff_timer

_frozen: dt.datetime | None = None
# A clock moved for one thread or task only (a replay in one web request must not move "now"
# for the other requests of the same process); it wins over the process-wide one.
_local: contextvars.ContextVar[dt.datetime | None] = contextvars.ContextVar("clock_local",
                                                                          default=None)


def now() -> dt.datetime:
    return _local.get() or _frozen or dt.datetime.now(dt.timezone.utc)


# The lender's day: dates (due dates, DPD, ceilings in force, calendar years) turn at midnight
# in Beijing, not at midnight UTC.
BEIJING = dt.timezone(dt.timedelta(hours=8))


def today() -> dt.date:
    """Today in Beijing."""
    return now().astimezone(BEIJING).date()


def moment_from_text(text: str) -> dt.datetime:
    """An ISO 8601 date-time as a person types it (`--as-of`): with its offset, or else in
    Beijing time, as the lender's staff read clocks; returned in UTC. ValueError otherwise."""
    value = dt.datetime.fromisoformat(text.strip())
    return (value if value.tzinfo else value.replace(tzinfo=BEIJING)).astimezone(
        dt.timezone.utc)


def set_now(value: dt.datetime | None):
    global _frozen
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    _frozen = value


@contextlib.contextmanager
def frozen_at(value: dt.datetime):
    previous = _frozen
    set_now(value)
    try:
        yield
    finally:
        set_now(previous)


@contextlib.contextmanager
def local_at(value: dt.datetime):
    """Move "now" to `value` for the current thread (context) only."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    token = _local.set(value)
    try:
        yield
    finally:
        _local.reset(token)


class _EngineDatetime(dt.datetime):
    """SpiffWorkflow's timer module asks datetime.now(); route it to our clock."""

    @classmethod
    def now(cls, tz=None):
        value = now()
        return value.astimezone(tz) if tz else value.replace(tzinfo=None)


_spiff_timer.datetime = _EngineDatetime
