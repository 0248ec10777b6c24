"""The working-day calendar: entered days override the package, unknown years fail loudly,
the CLI and the admin page enter and remove days, blocked reminders are retried."""
import datetime as dt
import sys
import threading
import types

import pytest
from sqlalchemy import event

from audit.models import AuditEvent
from calendars.models import CalendarDay
from calendars.operations import (CalendarInputError, complete_year, enter_days, parse_dates,
                                  remove_day, reopen_year)
from calendars.workdays import (CalendarUnknown, add_working_days, clear_cache, is_working_day,
                                non_standard_days, subtract_working_days, year_source)
from extensions import db
from tests.conftest import login

D = dt.date
EN = {"Accept-Language": "en"}


@pytest.fixture
def retry_hook(monkeypatch):
    """A stand-in monitoring.reminders whose retry_calendar_problems records its calls."""
    calls = []
    module = types.ModuleType("monitoring.reminders")
    module.retry_calendar_problems = lambda years, actor: calls.append(
        (list(years), getattr(actor, "id", actor)))
    monkeypatch.setitem(sys.modules, "monitoring.reminders", module)
    return calls


def test_entered_holiday_overrides_a_package_working_day(app, users):
    tuesday = D(2026, 3, 3)
    assert is_working_day(tuesday)
    assert add_working_days(D(2026, 3, 2), 1) == tuesday
    enter_days([tuesday], False, "typhoon closure", users["admin"])
    assert not is_working_day(tuesday)
    assert add_working_days(D(2026, 3, 2), 1) == D(2026, 3, 4)
    assert subtract_working_days(D(2026, 3, 4), 1) == D(2026, 3, 2)
    row = db.session.get(CalendarDay, tuesday)
    assert (row.is_working, row.note, row.entered_by_id) == (False, "typhoon closure",
                                                             users["admin"].id)
    # An entered working day overrides a package holiday too.
    assert not is_working_day(D(2026, 10, 2))
    enter_days(["2026-10-02"], True, "", users["admin"])
    assert is_working_day(D(2026, 10, 2))
    assert year_source(2026) == "package"


def test_make_up_saturday(app, users):
    saturday, friday = D(2026, 3, 7), D(2026, 3, 6)
    assert not is_working_day(saturday)
    assert add_working_days(friday, 1) == D(2026, 3, 9)
    enter_days([saturday], True, "make-up day", users["admin"])
    assert is_working_day(saturday)
    assert add_working_days(friday, 1) == saturday
    shown = {d["day"]: d for d in non_standard_days(2026)}
    assert shown[saturday]["source"] == "entered" and shown[saturday]["is_working"]
    assert shown[saturday]["package_value"] is False
    assert shown[D(2026, 10, 10)]["source"] == "package"  # the package's make-up Saturday


def test_unknown_year_raises_until_days_are_entered(app, users, retry_hook):
    assert year_source(2031) == "unknown"
    with pytest.raises(CalendarUnknown) as raised:
        is_working_day(D(2031, 5, 6))
    assert raised.value.year == 2031
    with pytest.raises(CalendarUnknown):
        add_working_days(D(2030, 12, 30), 5)  # runs into 2031

    result = enter_days(["2031-10-01..2031-10-07"], False, "National Day", users["admin"])
    enter_days(["2031-09-28", "2031-10-11"], True, "make-up days", users["admin"])
    # Entered days alone do not make the year known: it must be declared complete.
    assert year_source(2031) == "incomplete"
    with pytest.raises(CalendarUnknown):
        is_working_day(D(2031, 5, 6))
    complete_year(2031, "State Council notice", users["admin"])
    assert year_source(2031) == "entered"
    assert retry_hook == [([2031], users["admin"].id)] * 3
    assert result.years == [2031] and len(result.days) == 7
    assert is_working_day(D(2031, 5, 6))          # an ordinary Tuesday
    assert not is_working_day(D(2031, 5, 10))     # an ordinary Saturday
    assert not is_working_day(D(2031, 10, 1))     # entered holiday (a Wednesday)
    assert is_working_day(D(2031, 9, 28))         # entered make-up Sunday
    # Tue Sep 30 + 1 working day skips the holiday week to Wed Oct 8.
    assert add_working_days(D(2031, 9, 30), 1) == D(2031, 10, 8)
    # Reopening the year makes it unknown again.
    reopen_year(2031, users["admin"])
    with pytest.raises(CalendarUnknown):
        is_working_day(D(2031, 5, 6))


def test_rule_calendar_year_known_only_when_declared_complete(app, users, retry_hook):
    """DOMAIN.md §4, issue 11 rule 1: one entered 2027 holiday does not make 2027 known."""
    enter_days(["2027-02-11..2027-02-17"], False, "Spring Festival", users["admin"])
    with pytest.raises(CalendarUnknown):
        is_working_day(D(2027, 9, 15))  # the Mid-Autumn Festival is not entered yet
    with pytest.raises(CalendarInputError) as empty:
        complete_year(2028, "", users["admin"])
    assert empty.value.code == "year_empty"
    with pytest.raises(CalendarInputError) as package:
        complete_year(2026, "", users["admin"])
    assert package.value.code == "year_from_package"
    enter_days(["2027-09-15"], False, "Mid-Autumn Festival", users["admin"])
    complete_year(2027, "", users["admin"])
    assert not is_working_day(D(2027, 9, 15)) and is_working_day(D(2027, 9, 14))
    with pytest.raises(CalendarInputError):
        complete_year(2027, "", users["admin"])  # already complete
    events = [e.action for e in AuditEvent.query.order_by(AuditEvent.id)]
    assert "calendar.year_completed" in events
    client = app.test_client()
    from tests.conftest import login
    login(client, "admin")
    assert client.post("/admin/calendar/2027/reopen").status_code == 302
    clear_cache()  # the request changed the year in its own app context
    with pytest.raises(CalendarUnknown):
        is_working_day(D(2027, 9, 14))
    page = client.get("/admin/calendar?year=2027", headers={"Accept-Language": "en"})
    assert 'data-source="incomplete"' in page.get_data(as_text=True)
    assert client.post("/admin/calendar/2027/complete").status_code == 302
    clear_cache()
    assert is_working_day(D(2027, 9, 14))


def test_overrides_are_loaded_once_per_year_and_app_context(app, users):
    enter_days([D(2026, 3, 3)], False, "", users["admin"])
    statements = []

    def count(conn, cursor, statement, *args):
        if "calendar_days" in statement:
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        add_working_days(D(2026, 3, 2), 120)  # about six months of days
        add_working_days(D(2026, 12, 20), 10)  # into 2027: unknown, after one more query
    except CalendarUnknown:
        pass
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert len(statements) == 2, statements  # 2026 once, 2027 once


def test_outside_an_app_context_only_the_package_counts(app, users):
    enter_days([D(2026, 3, 3)], False, "", users["admin"])
    seen = {}

    def probe():
        seen["working"] = is_working_day(D(2026, 3, 3))
        try:
            is_working_day(D(2031, 1, 6))
        except CalendarUnknown:
            seen["unknown"] = True

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    assert seen == {"working": True, "unknown": True}
    assert not is_working_day(D(2026, 3, 3))


def test_entering_is_audited_and_replaces_an_earlier_entry(app, users, retry_hook):
    enter_days(["2027-02-06"], False, "first", users["admin"])
    enter_days(["2027-02-06, 2028-01-03"], True, "second", users["admin"])
    assert db.session.get(CalendarDay, D(2027, 2, 6)).is_working
    events = AuditEvent.query.filter_by(action="calendar.days_entered") \
        .order_by(AuditEvent.id).all()
    assert [e.data["dates"] for e in events] == [["2027-02-06"], ["2027-02-06", "2028-01-03"]]
    assert events[1].data["replaced"] == [{"date": "2027-02-06", "was_working": False,
                                           "note": "first"}]
    assert retry_hook[-1] == ([2027, 2028], users["admin"].id)
    remove_day(D(2027, 2, 6), users["admin"])
    removed = AuditEvent.query.filter_by(action="calendar.day_removed").one()
    assert removed.data["date"] == "2027-02-06" and removed.actor_id == users["admin"].id


def test_without_the_hook_entering_still_works(app, users, monkeypatch):
    monkeypatch.setitem(sys.modules, "monitoring.reminders", types.ModuleType("monitoring.reminders"))
    result = enter_days(["2027-01-01"], False, "", users["admin"])
    assert result.retried is None and result.retry_error is None


def test_a_failing_hook_keeps_the_days(app, users, monkeypatch):
    module = types.ModuleType("monitoring.reminders")

    def broken(years, actor):
        raise RuntimeError("boom")

    module.retry_calendar_problems = broken
    monkeypatch.setitem(sys.modules, "monitoring.reminders", module)
    result = enter_days(["2027-01-01"], False, "", users["admin"])
    assert "boom" in result.retry_error
    assert db.session.get(CalendarDay, D(2027, 1, 1)) is not None


def test_bad_input_writes_nothing(app, users):
    with pytest.raises(CalendarInputError) as raised:
        enter_days(["2027-01-01", "2027-02-30", "soon"], False, "", users["admin"])
    assert raised.value.code == "bad_dates" and "2027-02-30" in raised.value.params["values"]
    with pytest.raises(CalendarInputError) as raised:
        enter_days(["2027-01-01..2027-03-01"], False, "", users["admin"])
    assert raised.value.code == "range_too_long"
    with pytest.raises(CalendarInputError):
        enter_days(["2027-01-01"], False, "x" * 121, users["admin"])
    with pytest.raises(CalendarInputError):
        enter_days([], False, "", users["admin"])
    assert CalendarDay.query.count() == 0
    assert AuditEvent.query.filter_by(action="calendar.days_entered").count() == 0
    assert parse_dates("2027-10-07..2027-10-08, 2027-10-01\n2027-10-01") == \
        [D(2027, 10, 1), D(2027, 10, 7), D(2027, 10, 8)]


def test_cli_holiday_workday_show(app, retry_hook):
    runner = app.test_cli_runner()
    unknown = runner.invoke(args=["calendar", "show", "2027"])
    assert unknown.exit_code == 0 and "unknown" in unknown.output

    bad = runner.invoke(args=["calendar", "holiday", "2027-10-01", "2027-13-01"])
    assert bad.exit_code != 0 and "2027-13-01" in bad.output
    assert CalendarDay.query.count() == 0

    done = runner.invoke(args=["calendar", "holiday", "2027-10-01..2027-10-07",
                               "--note", "National Day"])
    assert done.exit_code == 0, done.output
    assert "entered 7 holiday(s)" in done.output
    made_up = runner.invoke(args=["calendar", "workday", "2027-09-26", "2027-10-09"])
    assert made_up.exit_code == 0 and "2 make-up working day(s)" in made_up.output
    assert retry_hook == [([2027], None), ([2027], None)]
    incomplete = runner.invoke(args=["calendar", "show", "2027"])
    assert "incomplete" in incomplete.output
    completed = runner.invoke(args=["calendar", "complete", "2027"])
    assert completed.exit_code == 0 and "2027 declared complete" in completed.output
    assert is_working_day(D(2027, 10, 9)) and not is_working_day(D(2027, 10, 4))

    shown = runner.invoke(args=["calendar", "show", "2027"])
    assert shown.exit_code == 0
    assert "from entered days" in shown.output
    assert "2027-10-01 Fri  holiday" in shown.output and "(National Day)" in shown.output
    assert "2027-10-09 Sat  working day" in shown.output
    # Entered weekend holidays are listed (they can be removed); plain weekdays are not.
    assert "2027-10-02" in shown.output and "2027-10-08" not in shown.output
    assert shown.output.index("September") < shown.output.index("October")

    package = runner.invoke(args=["calendar", "show", "2026"])
    assert "from the chinese-calendar package" in package.output
    assert "2026-10-10 Sat  working day  package" in package.output
    assert "2026-10-01 Thu  holiday      package" in package.output
    assert "2026-10-03" not in package.output  # a holiday on a Saturday is not unusual

    removed = runner.invoke(args=["calendar", "remove", "2027-10-09"])
    assert removed.exit_code == 0 and not is_working_day(D(2027, 10, 9))
    missing = runner.invoke(args=["calendar", "remove", "2027-10-09"])
    assert missing.exit_code != 0


def test_admin_page_adds_and_removes_days(app, users, retry_hook):
    client = app.test_client()
    login(client, "admin")
    page = client.get("/admin/calendar?year=2027", headers=EN)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-source="unknown"' in html
    assert 'name="dates"' in html and "/admin/calendar?year=2027" in html

    added = client.post("/admin/calendar?year=2027", headers=EN, data={
        "kind": "holiday", "dates": "2027-10-01..2027-10-03, 2027-10-04", "note": "国庆"})
    assert added.status_code == 302 and added.location.endswith("/admin/calendar?year=2027")
    client.post("/admin/calendar?year=2027", data={"kind": "workday", "dates": "2027-10-09",
                                                    "note": ""})
    assert retry_hook == [([2027], users["admin"].id)] * 2
    assert [r.day for r in CalendarDay.query.order_by(CalendarDay.day)] == \
        [D(2027, 10, i) for i in (1, 2, 3, 4, 9)]

    html = client.get("/admin/calendar?year=2027", headers=EN).get_data(as_text=True)
    assert 'data-source="entered"' in html
    assert 'data-day="2027-10-01" data-source="entered" data-working="false"' in html
    assert 'data-day="2027-10-09" data-source="entered" data-working="true"' in html
    assert "国庆" in html and "/admin/calendar/2027-10-09/remove" in html

    removed = client.post("/admin/calendar/2027-10-09/remove")
    assert removed.status_code == 302 and removed.location.endswith("year=2027")
    assert db.session.get(CalendarDay, D(2027, 10, 9)) is None
    again = client.post("/admin/calendar/2027-10-09/remove", follow_redirects=True)
    assert again.status_code == 200
    assert AuditEvent.query.filter_by(action="calendar.day_removed").count() == 1

    package = client.get("/admin/calendar?year=2026", headers=EN).get_data(as_text=True)
    assert 'data-day="2026-10-10" data-source="package" data-working="true"' in package
    assert "National Day" in package
    zh = client.get("/admin/calendar?year=2026",
                    headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "国庆节" in zh


def test_admin_page_refuses_bad_dates_in_the_users_language(app, users):
    client = app.test_client()
    login(client, "admin")
    bad = client.post("/admin/calendar?year=2027", headers=EN,
                      data={"kind": "holiday", "dates": "2027-10-01 2027-02-30", "note": ""})
    assert bad.status_code == 400
    html = bad.get_data(as_text=True)
    assert "2027-02-30" in html and "Nothing was saved" in html
    assert CalendarDay.query.count() == 0
    empty = client.post("/admin/calendar?year=2027", headers=EN,
                        data={"kind": "holiday", "dates": "", "note": ""})
    assert empty.status_code == 400 and "This field is required." in empty.get_data(as_text=True)
    long_note = client.post("/admin/calendar?year=2027", headers=EN,
                            data={"kind": "holiday", "dates": "2027-10-01", "note": "x" * 121})
    assert long_note.status_code == 400
    assert "At most 120 characters." in long_note.get_data(as_text=True)
    assert CalendarDay.query.count() == 0
    zh = client.post("/admin/calendar?year=2027", headers={"Accept-Language": "zh-CN"},
                     data={"kind": "holiday", "dates": "", "note": ""})
    assert "此项必填" in zh.get_data(as_text=True) or "必填" in zh.get_data(as_text=True)


def test_non_admin_gets_403(app, users):
    client = app.test_client()
    login(client, "plo")
    assert client.get("/admin/calendar").status_code == 403
    assert client.post("/admin/calendar", data={"kind": "holiday", "dates": "2027-01-01",
                                                "note": ""}).status_code == 403
    enter_days(["2027-01-01"], False, "", users["admin"])
    assert client.post("/admin/calendar/2027-01-01/remove").status_code == 403
    assert CalendarDay.query.count() == 1
    assert AuditEvent.query.filter_by(action="permission.denied").count() == 3


def test_admin_navigation_links_the_pages(app, users):
    client = app.test_client()
    login(client, "admin")
    for path in ("/admin/problems", "/admin/calendar", "/admin/notifications"):
        html = client.get(path).get_data(as_text=True)
        for link in ('href="/admin/problems"', 'href="/admin/calendar"',
                     'href="/admin/notifications"'):
            assert link in html, (path, link)
        assert f'href="{path}" class="active"' in html


def test_rule_due_dates_never_lie_in_the_past(app):
    """Issue 11 rule 2: a task created after the office day ends, or on a day off, is due at
    the end of a later working day — never before it was created."""
    from workflows.service import _due_at
    beijing = dt.timezone(dt.timedelta(hours=8))
    # Monday 2026-03-02, 19:00 Beijing, due "today": 18:00 on Tuesday.
    late = dt.datetime(2026, 3, 2, 19, 0, tzinfo=beijing)
    assert _due_at({"dueInWorkingDays": 0}, late) == dt.datetime(2026, 3, 3, 18, tzinfo=beijing)
    # Same day at 10:00: still today 18:00; in 2 working days: Wednesday 18:00.
    morning = dt.datetime(2026, 3, 2, 10, 0, tzinfo=beijing)
    assert _due_at({"dueInWorkingDays": 0}, morning) == dt.datetime(2026, 3, 2, 18,
                                                                     tzinfo=beijing)
    assert _due_at({"dueInWorkingDays": 2}, morning) == dt.datetime(2026, 3, 4, 18,
                                                                     tzinfo=beijing)
    # Saturday 2026-03-07 and the National Day holiday: counted from the next working day.
    saturday = dt.datetime(2026, 3, 7, 9, 0, tzinfo=beijing)
    assert _due_at({"dueInWorkingDays": 0}, saturday) == dt.datetime(2026, 3, 9, 18,
                                                                      tzinfo=beijing)
    holiday = dt.datetime(2026, 10, 2, 9, 0, tzinfo=beijing)
    due = _due_at({"dueInWorkingDays": 1}, holiday)
    assert due > holiday and is_working_day(due.astimezone(beijing).date())
    for created in (late, morning, saturday, holiday):
        for days in range(4):
            assert _due_at({"dueInWorkingDays": days}, created) > created


def test_admin_page_opens_on_the_year_in_beijing(app, users):
    """New Year's Day 01:00 in Beijing is still 31 December in UTC: the page opens on the
    lender's new year."""
    from workflows import clock
    clock.set_now(dt.datetime(2026, 12, 31, 17, 0, tzinfo=dt.timezone.utc))
    client = app.test_client()
    login(client, "admin")
    html = client.get("/admin/calendar", headers=EN).get_data(as_text=True)
    assert "<h1>Working-day calendar 2027</h1>" in html
