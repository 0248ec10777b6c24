"""Call windows and contact rules of phone collection [001] (issue 11 rule 7), through the
real completion path (workflows.tasks.complete_task, the task page) and the contact log."""
import datetime as dt

import pytest
from flask_babel import force_locale

from audit.models import AuditEvent
from cases.models import ContactLogEntry
from cases.records import log_contact
from cases.staging import run_daily
from collection.contact_rules import directory, is_direct_family, party_called
from notifications.models import Notification
from tests.conftest import login
from tests.test_collection import CALL, at, db_loan, do, overdue, ready, staff  # noqa: F401
from tests.test_servicing import serviced  # noqa: F401 (fixture)
from workflows.errors import InvalidData
from workflows.models import ProcessInstance
from workflows.timers import fire_due_timers

EN = {"Accept-Language": "en"}
DAY = dt.date(2026, 5, 8)  # the loan is 2 days past due (stage dpd_1_3) on this day
BORROWER = "13800138000"
SPOUSE, COLLEAGUE, GUARANTOR, STRANGER = "13900000001", "13900000002", "13900000003", \
    "13900000004"
PEOPLE = {
    "contacts": [
        {"name": "王芳", "relationship": "spouse", "phone": SPOUSE, "knows_about_loan": False},
        {"name": "李雷", "relationship": "colleague", "phone": COLLEAGUE,
         "knows_about_loan": True},
        {"name": "孙七", "relationship": "同事", "phone": STRANGER, "knows_about_loan": False}],
    "guarantors": [{"kind": "person", "name": "赵六", "phone": GUARANTOR}]}


@pytest.fixture
def loan(overdue):
    return overdue(**PEOPLE)


def call(loan, user, **values):
    return do(loan, "phone_collection", user, **dict(CALL, **values))


def hand_log(loan, user, number, outcome, answered_by=""):
    return log_contact(db_loan(loan), user, "call", outcome=outcome, number=number,
                       answered_by=answered_by)


def refused(loan, user, **values):
    with pytest.raises(InvalidData) as exc:
        call(loan, user, **values)
    return exc.value.field_errors


def next_phone_task(loan, hour, minute=0, day=DAY):
    at(day, hour, minute)
    fire_due_timers()
    return ready(loan, "phone_collection")


def calls(loan):
    return ContactLogEntry.query.filter_by(loan_id=loan.id, kind="call") \
        .order_by(ContactLogEntry.id).all()


def test_who_was_called_is_found_by_the_number(app, loan):
    book = directory(db_loan(loan))
    assert party_called(book, "+86 138-0013-8000").kind == "borrower"
    assert party_called(book, SPOUSE).kind == "family"
    assert (party_called(book, COLLEAGUE).kind, party_called(book, COLLEAGUE).knows_about_loan) \
        == ("contact", True)
    assert party_called(book, GUARANTOR).kind == "guarantor"
    assert party_called(book, "13700000000", "contact").kind == "contact"
    assert party_called(book, "13700000000", "nobody").kind == "unknown"
    assert is_direct_family("父亲") and is_direct_family("Spouse") and not is_direct_family(
        "brother") and not is_direct_family("同事")


def test_rule_calls_outside_the_call_windows_are_refused_or_flagged(app, loan, staff):
    """Flagged, not refused: the call happened; the record is kept and the leader told."""
    at(DAY, 11, 5)  # the morning window closed at 11:00
    call(loan, staff["collector"], collection_result="reached")
    entry = calls(loan)[-1]
    assert entry.flag == "outside_call_window" and entry.outcome == "reached"
    flagged = AuditEvent.query.filter_by(action="collection.call_flagged").one()
    assert flagged.data["flag"] == "outside_call_window"
    assert flagged.data["next_window"].startswith("2026-05-08 12:30–13:30")
    assert flagged.data["notified"] == ["leader"]
    notice = Notification.query.filter_by(recipient="leader", channel="inbox").one()
    assert loan.loan_no in notice.body and "11:05" in notice.body
    # The leader sees it on the case's contact log.
    client = app.test_client()
    login(client, "leader")
    page = client.get(f"/cases/{loan.loan_no}", headers=EN).get_data(as_text=True)
    assert "Outside the call windows" in page.split('id="contact-log"', 1)[1]

    # Within the next window nothing is flagged.
    next_phone_task(loan, 12, 31)
    at(DAY, 12, 40)
    call(loan, staff["collector"])
    assert calls(loan)[-1].flag == ""
    # A call logged by hand at night (21:30) is flagged the same way.
    at(DAY, 21, 30)
    hand_log(loan, staff["collector"], BORROWER, "no_answer")
    assert calls(loan)[-1].flag == "outside_call_window"
    assert Notification.query.filter_by(recipient="leader", channel="inbox").count() == 2


def test_rule_calls_per_window_are_counted_and_capped(app, loan, staff):
    """At most 3 calls to the borrower 9:30–11:00; the fourth is logged and flagged."""
    for minute in (35, 45, 55):
        at(DAY, 9, minute)
        hand_log(loan, staff["collector"], BORROWER, "no_answer")
    # A call to the spouse is not a call to the borrower: not counted.
    hand_log(loan, staff["collector"], SPOUSE, "no_answer", "family")
    assert [e.flag for e in calls(loan)] == ["", "", "", ""]
    at(DAY, 10, 10)
    call(loan, staff["collector"], answered_by="nobody", collection_result="no_answer")
    fourth = calls(loan)[-1]
    assert fourth.flag == "over_window_limit"
    flagged = AuditEvent.query.filter_by(action="collection.call_flagged").one()
    assert (flagged.data["call"], flagged.data["max"]) == (4, 3)
    assert Notification.query.filter_by(recipient="leader", channel="inbox").count() == 1
    # The next phone task shows the count per window of the day.
    task = next_phone_task(loan, 12, 31)
    assert task.context["calls_today"] == (
        "2026-05-08: 09:30–11:00 4/3 · 12:30–13:30 0/2 · 14:30–15:30 0/2 · 19:00–21:00 0/2")
    # 12:30–13:30 allows two: the third is flagged.
    for minute in (31, 32):
        at(DAY, 12, minute)
        hand_log(loan, staff["collector"], BORROWER, "no_answer")
    at(DAY, 12, 40)
    call(loan, staff["collector"], answered_by="nobody", collection_result="no_answer")
    assert [e.flag for e in calls(loan)][-3:] == ["", "", "over_window_limit"]


def test_rule_contacts_called_at_dpd_1_to_3_only_after_borrower_and_family_unreachable(
        app, loan, staff):
    at(DAY, 10, 0)
    assert db_loan(loan).stage == "dpd_1_3"
    # Nobody tried yet: a contact and a guarantor are refused, naming who to call first, in
    # the user's language (English here; the default locale is zh_CN).
    with force_locale("en"):
        errors = refused(loan, staff["collector"], number_called=COLLEAGUE,
                         answered_by="contact")
    assert BORROWER in errors["number_called"][0] and SPOUSE in errors["number_called"][0]
    assert "DPD 1–3" in errors["number_called"][0]
    assert "number_called" in refused(loan, staff["collector"], number_called=GUARANTOR,
                                      answered_by="guarantor")
    # An unknown number someone says is a contact is refused too (on who answered).
    assert "answered_by" in refused(loan, staff["collector"], number_called="13700000000",
                                    answered_by="contact")
    with pytest.raises(InvalidData) as exc:  # the contact log refuses it the same way
        hand_log(loan, staff["collector"], COLLEAGUE, "reached", "李雷")
    assert "number" in exc.value.field_errors
    assert calls(loan) == []

    # The borrower does not answer: the spouse (direct family) is still to be tried.
    hand_log(loan, staff["collector"], BORROWER, "no_answer")
    errors = refused(loan, staff["collector"], number_called=COLLEAGUE, answered_by="contact")
    assert SPOUSE in errors["number_called"][0] and BORROWER not in errors["number_called"][0]
    # Calling direct family is allowed at DPD 1–3; the spouse's phone is switched off.
    hand_log(loan, staff["collector"], SPOUSE, "switched_off")
    call(loan, staff["collector"], number_called=COLLEAGUE, answered_by="contact",
         collection_result="reached")
    assert calls(loan)[-1].number == COLLEAGUE

    # The borrower answers later: contacts wait again until the borrower is unreachable.
    at(DAY, 12, 35)
    hand_log(loan, staff["collector"], BORROWER, "reached", "borrower")
    with pytest.raises(InvalidData):
        hand_log(loan, staff["collector"], GUARANTOR, "reached")

    # From DPD 4 contacts may be called.
    at(dt.date(2026, 5, 11), 10, 0)
    run_daily(dt.date(2026, 5, 11))
    assert db_loan(loan).stage == "dpd_4_7"
    hand_log(loan, staff["collector"], GUARANTOR, "reached")


def test_rule_a_contact_who_does_not_know_of_the_loan_is_never_told(app, loan, staff):
    at(dt.date(2026, 5, 11), 10, 0)
    run_daily(dt.date(2026, 5, 11))
    assert db_loan(loan).stage == "dpd_4_7"
    # 孙七 does not know of the loan: revealing the debt to him is refused.
    errors = refused(loan, staff["collector"], number_called=STRANGER, answered_by="contact",
                     debt_disclosed=True)
    assert list(errors) == ["debt_disclosed"] and "孙七" in errors["debt_disclosed"][0]
    # Nor to the spouse, nor to a relative answering the borrower's phone, nor to an unknown
    # person; the borrower, a guarantor and a contact who knows may hear it.
    for number, who in ((SPOUSE, "family"), (BORROWER, "family"), ("13700000000", "contact")):
        assert "debt_disclosed" in refused(loan, staff["collector"], number_called=number,
                                           answered_by=who, debt_disclosed=True)
    assert calls(loan) == []
    call(loan, staff["collector"], number_called=COLLEAGUE, answered_by="contact",
         debt_disclosed=True)
    logged = AuditEvent.query.filter_by(action="collection.call_logged").one()
    assert logged.data["debt_disclosed"] is True and logged.data["number"] == COLLEAGUE

    # The next phone task shows each contact and whether they know of the loan.
    task = next_phone_task(loan, 12, 31, dt.date(2026, 5, 11))
    shown = task.context["contacts_on_file_en"]
    assert "孙七 (同事) 13900000004: does not know of the loan" in shown
    assert "李雷 (colleague) 13900000002: knows of the loan" in shown
    assert "王芳 (spouse, direct family)" in shown and "赵六 (guarantor)" in shown
    assert "孙七（同事）13900000004：不知道贷款" in task.context["contacts_on_file_zh"]

    # On the task page the refusal is shown on the field, in the user's language.
    client = app.test_client()
    login(client, "collector")
    form = dict(CALL, number_called=STRANGER, answered_by="contact", debt_disclosed="y")
    response = client.post(f"/tasks/{task.id}", data=form, headers=EN)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "孙七 is not known to know of the loan: up to DPD 7 the debt must never be " \
           "revealed to them." in page
    assert ready(loan, "phone_collection").id == task.id

    # From DPD 8 the debt may be revealed to every contact [001].
    at(dt.date(2026, 5, 14), 10, 0)
    run_daily(dt.date(2026, 5, 14))
    assert db_loan(loan).stage == "dpd_8_30"
    call(loan, staff["collector"], number_called=STRANGER, answered_by="contact",
         debt_disclosed=True)
    assert calls(loan)[-1].number == STRANGER


@pytest.mark.parametrize("step", ["demand_guarantor", "propose_plan"])
def test_phone_call_offers_demand_guarantor_and_repayment_plan(app, loan, staff, step):
    at(DAY, 10, 0)
    call(loan, staff["collector"], next_step=step, client_type="lost_contact")
    instance = ProcessInstance.query.filter_by(case_id=loan.id).join(
        ProcessInstance.definition).filter_by(process_key="collection").one()
    assert instance.status == "running"
    assert AuditEvent.query.filter_by(action="collection.call_logged").one() \
        .data["next_step"] == step
