"""Collection escalation (DOMAIN.md §5.3): phone collection by stage, promises to pay, visit
and litigation after the leader's approval, legal steps, monthly notices, repayments."""
import datetime as dt
from decimal import Decimal

import pytest

from accounts.operations import create_user
from audit.models import AuditEvent
from collection.facts import overdue_amount
from collection.windows import add_month, next_call_window
from cases.models import ContactLogEntry, Loan, PromiseToPay
from cases.staging import run_daily
from ledger.penalty import accrue as accrue_penalty
from ledger.models import Repayment
from ledger.repayments import post_repayment
from ledger.verify import verify
from tests.conftest import PASSWORD, login
from tests.test_servicing import serviced  # noqa: F401 (fixture)
from workflows import clock
from workflows.clock import BEIJING
from workflows.errors import InvalidData, NotAllowed
from workflows.models import HumanTask, ProcessInstance
from workflows.tasks import complete_task
from workflows.timers import fire_due_timers

UTC = dt.timezone.utc
CALL = {"number_called": "13800138000", "answered_by": "borrower",
        "collection_result": "reached", "next_step": "continue"}


def at(day, hour, minute=0):
    """Set the clock to `hour:minute` Beijing time on `day`."""
    clock.set_now(dt.datetime.combine(day, dt.time(hour, minute), BEIJING).astimezone(UTC))


@pytest.fixture
def staff(users):
    users["leader"] = create_user("leader", PASSWORD, ["dept_head"])
    users["lawyer"] = create_user("lawyer", PASSWORD, ["legal"])
    return users


@pytest.fixture
def overdue(serviced, staff):
    """A loan whose first installment (6 May, 101 000) is 2 days overdue; collection runs."""
    def make(**overrides):
        loan = serviced(**overrides)
        at(dt.date(2026, 5, 8), 10)
        assert run_daily(dt.date(2026, 5, 8))["overdue"] == 1
        return db_loan(loan)
    return make


def db_loan(loan):
    return Loan.query.get(loan.id)


def ready(loan, bpmn_id=None):
    query = HumanTask.query.filter_by(case_id=loan.id, process_key="collection", state="ready")
    if bpmn_id:
        return query.filter_by(bpmn_id=bpmn_id).one()
    return sorted(t.bpmn_id for t in query)


def do(loan, bpmn_id, user, **data):
    return complete_task(ready(loan, bpmn_id).id, user, data=data)


def collection(loan):
    return ProcessInstance.query.filter_by(case_id=loan.id).join(ProcessInstance.definition) \
        .filter_by(process_key="collection").one()


def pay(loan, amount, ref, user):
    today = clock.now().astimezone(BEIJING).date().isoformat()
    return post_repayment(db_loan(loan), {"amount": amount, "paid_at": today,
                                          "external_ref": ref}, user)


def overdue_now(loan, accrue=False):
    """What is overdue today, with the penalty interest up to today when `accrue`."""
    if accrue:
        accrue_penalty(clock.now().astimezone(BEIJING).date(), loan.id)
    return overdue_amount(db_loan(loan))


def actions(prefix="collection."):
    return [e.action for e in AuditEvent.query.filter(AuditEvent.action.like(prefix + "%"))
            .order_by(AuditEvent.id)]


def test_call_windows_and_months():
    def beijing(h, m):
        return dt.datetime(2026, 5, 8, h, m, tzinfo=BEIJING)
    assert next_call_window(beijing(10, 0))[0] == beijing(9, 30)
    assert next_call_window(beijing(10, 0), include_current=False)[0] == beijing(12, 30)
    assert next_call_window(beijing(16, 0))[0] == beijing(19, 0)
    assert next_call_window(beijing(21, 0))[0] == dt.datetime(2026, 5, 9, 9, 30, tzinfo=BEIJING)
    assert add_month(dt.date(2026, 1, 31)) == dt.date(2026, 2, 28)
    assert add_month(dt.date(2026, 12, 8)) == dt.date(2027, 1, 8)


def test_phone_task_shows_stage_rules_and_window_and_logs_the_call(app, overdue, staff):
    loan = overdue()
    task = ready(loan, "phone_collection")
    assert task.lane == "collector" and task.priority == 1 and task.form_key == "collection_call"
    assert task.context["dpd"] == 2 and task.context["stage"] == "dpd_1_3"
    # 100,000 + 1,000 interest + 2 days' penalty at 4.35% × 1.5 (35.75).
    assert task.context["overdue_amount"] == "101035.75"
    assert "borrower only" in task.context["stage_rules_en"]
    assert "只联系借款人本人" in task.context["stage_rules_zh"]
    assert task.context["next_call_window"].startswith("2026-05-08 09:30–11:00")
    # A call that reaches nobody: logged, and retried in the next window (12:30).
    do(loan, "phone_collection", staff["collector"], **dict(
        CALL, answered_by="nobody", collection_result="no_answer",
        collection_note="rang 8 times"))
    entry = ContactLogEntry.query.filter_by(loan_id=loan.id, kind="call").one()
    assert (entry.number, entry.answered_by, entry.outcome, entry.note) == (
        "13800138000", "nobody", "no_answer", "rang 8 times")
    assert entry.user_id == staff["collector"].id and entry.task_id == task.id
    assert ready(loan) == []
    assert collection(loan).next_timer_at.replace(tzinfo=UTC) == dt.datetime(
        2026, 5, 8, 4, 30, tzinfo=UTC)
    at(dt.date(2026, 5, 8), 12, 31)
    fire_due_timers()
    assert ready(loan, "phone_collection").context["next_call_window"].startswith(
        "2026-05-08 12:30–13:30")
    # Stage 4-7 has other rules.
    at(dt.date(2026, 5, 11), 10)
    run_daily(dt.date(2026, 5, 11))
    do(loan, "phone_collection", staff["collector"], **CALL)
    at(dt.date(2026, 5, 11), 12, 31)
    fire_due_timers()
    task = ready(loan, "phone_collection")
    assert task.context["stage"] == "dpd_4_7" and "never reveal the loan" in \
        task.context["stage_rules_en"]
    assert actions() == ["collection.call_logged"] * 2


def test_promise_kept(app, overdue, staff):
    loan = overdue()
    do(loan, "phone_collection", staff["collector"], **dict(
        CALL, collection_result="promised_to_pay", promised_on="2026-05-11",
        promised_amount="50000.00"))
    promise = PromiseToPay.query.filter_by(loan_id=loan.id).one()
    assert (promise.promised_on, promise.amount, promise.status) == (
        dt.date(2026, 5, 11), 50000, "open")
    entry = ContactLogEntry.query.filter_by(loan_id=loan.id, kind="call").one()
    assert (entry.outcome, entry.promised_on) == ("promised_to_pay", dt.date(2026, 5, 11))
    assert ready(loan) == []
    # A partial repayment while waiting for the promised day is noted; the wait goes on.
    at(dt.date(2026, 5, 10), 9)
    pay(loan, "50000.00", "R1", staff["admin"])
    assert ready(loan) == [] and collection(loan).status == "running"
    assert "collection goes on" in ContactLogEntry.query.filter_by(
        loan_id=loan.id, kind="note").one().note
    # Checked on the promised day at 18:00 Beijing (10:00 UTC), not before.
    at(dt.date(2026, 5, 11), 18, 0)
    fire_due_timers()
    assert PromiseToPay.query.get(promise.id).status == "open"
    at(dt.date(2026, 5, 11), 18, 1)
    fire_due_timers()
    assert PromiseToPay.query.get(promise.id).status == "kept"
    # Still overdue (51 000 and the penalty since): phone collection resumes.
    task = ready(loan, "phone_collection")
    assert task.context["overdue_amount"] == str(overdue_now(loan))
    assert Decimal("51000") < overdue_now(loan) < Decimal("51200")
    assert actions() == ["collection.call_logged", "collection.promise_made",
                         "collection.repayment_noted", "collection.promise_kept"]


def test_promise_kept_by_clearing_the_overdue_ends_collection(app, overdue, staff):
    loan = overdue()
    do(loan, "phone_collection", staff["collector"], **dict(
        CALL, collection_result="promised_to_pay", promised_on="2026-05-11",
        promised_amount="101000.00"))
    at(dt.date(2026, 5, 11), 9)
    pay(loan, str(overdue_now(loan, accrue=True)), "R1", staff["admin"])
    assert PromiseToPay.query.filter_by(loan_id=loan.id).one().status == "kept"
    instance = collection(loan)
    assert instance.status == "completed" and instance.next_timer_at is None


def test_broken_promise_is_counted_and_collection_resumes(app, overdue, staff):
    loan = overdue()
    for n, day in enumerate((dt.date(2026, 5, 11), dt.date(2026, 5, 13)), start=1):
        do(loan, "phone_collection", staff["collector"], **dict(
            CALL, collection_result="promised_to_pay", promised_on=day.isoformat(),
            promised_amount="101000.00"))
        at(day, 18, 1)
        fire_due_timers()
        assert PromiseToPay.query.filter_by(loan_id=loan.id, status="broken").count() == n
        assert ready(loan, "phone_collection").context["broken_promises"] == n
    assert actions("collection.promise_") == ["collection.promise_made",
                                              "collection.promise_broken"] * 2


def test_visit_rejected_then_approved_then_litigation_to_the_end(app, overdue, staff):
    loan = overdue()
    collector, leader, lawyer = staff["collector"], staff["leader"], staff["lawyer"]
    propose = dict(CALL, answered_by="nobody", collection_result="no_answer",
                   next_step="propose_visit", visit_reason="no answer for a week")
    do(loan, "phone_collection", collector, **propose)
    task = ready(loan, "approve_visit")
    assert task.lane == "dept_head" and task.form_key == "collection_visit_approval"
    # Wrong role: the collector may not approve the visit.
    with pytest.raises(NotAllowed):
        complete_task(task.id, collector, data={"visit_decision": "approve",
                                                "visit_comment": "ok"})
    with pytest.raises(InvalidData):  # a decision needs a comment
        complete_task(task.id, leader, data={"visit_decision": "reject"})
    do(loan, "approve_visit", leader, visit_decision="reject", visit_comment="call again")
    assert ready(loan) == ["phone_collection"]
    do(loan, "phone_collection", collector, **propose)
    do(loan, "approve_visit", leader, visit_decision="approve", visit_comment="go")
    task = ready(loan, "visit_report")
    assert task.lane == "collector"
    with pytest.raises(NotAllowed):
        complete_task(task.id, leader, data={})
    do(loan, "visit_report", collector, visit_address="杭州市西湖区", visit_met="借款人妻子",
       visit_findings="shop closed, goods moved out", visit_situation="wilful_default",
       visit_photos_note="4 photos of the empty shop")
    visit = ContactLogEntry.query.filter_by(loan_id=loan.id, kind="visit").one()
    assert (visit.address, visit.answered_by, visit.outcome) == (
        "杭州市西湖区", "借款人妻子", "wilful_default")
    task = ready(loan, "approve_litigation")
    assert task.context["litigation_reason"] == "wilful_default"
    do(loan, "approve_litigation", leader, litigation_decision="approve",
       litigation_comment="sue")
    task = ready(loan, "legal_filing")
    assert task.lane == "legal"
    with pytest.raises(NotAllowed):
        complete_task(task.id, collector, data={})
    do(loan, "legal_filing", lawyer, court="杭州市西湖区人民法院", court_case_no="(2026)浙0106民初123号",
       filed_on="2026-05-12", filed_documents=["complaint", "contract", "iou"])
    do(loan, "legal_preservation", lawyer, accounts_frozen="ICBC 6222…, 80 000",
       assets_seized="厂房", preservation_ruling_no="(2026)浙0106财保45号",
       preservation_on="2026-05-14")
    with pytest.raises(InvalidData) as refused:  # more than is owed: nothing changes
        do(loan, "legal_outcome", lawyer, legal_outcome_kind="liquidation",
           recovered_amount="9000000.00", concluded_on="2026-05-20")
    assert "recovered_amount" in refused.value.field_errors
    do(loan, "legal_outcome", lawyer, legal_outcome_kind="liquidation",
       recovered_amount="90000.00", concluded_on="2026-05-20")
    # The money recovered is posted through the ledger as a repayment from liquidation.
    recovery = Repayment.query.filter_by(loan_id=loan.id).one()
    assert (recovery.amount, recovery.source) == (Decimal("90000.00"), "liquidation")
    assert recovery.penalty > 0 and verify() == []
    # A balance is left: collection goes on with the recovery follow-up (issue 11 rule 4).
    assert collection(loan).status == "running"
    assert ready(loan) == ["recovery_followup"]
    assert actions() == ["collection.call_logged", "collection.call_logged",
                         "collection.visit_logged", "collection.legal_concluded"]


def test_over_90_days_past_due_proposes_litigation(app, overdue, staff):
    loan = overdue()
    do(loan, "phone_collection", staff["collector"], **CALL)  # retried at 12:30
    at(dt.date(2026, 8, 10), 10)
    run_daily(dt.date(2026, 8, 10))
    assert db_loan(loan).dpd == 96
    fire_due_timers()
    # The task data said DPD 2; the service re-read the loan.
    task = ready(loan, "approve_litigation")
    assert task.context["dpd"] == 96 and task.context["litigation_reason"] == "long_overdue"
    assert "phone_collection" not in ready(loan)
    # Rejected: phone collection goes on, not proposed again for 30 days.
    do(loan, "approve_litigation", staff["leader"], litigation_decision="reject",
       litigation_comment="guarantor will pay")
    assert ready(loan, "phone_collection").context["stage"] == "M3+"
    do(loan, "phone_collection", staff["collector"], **CALL)
    at(dt.date(2026, 8, 10), 12, 31)
    fire_due_timers()
    assert "approve_litigation" not in ready(loan)
    assert ready(loan, "phone_collection")


def test_repayment_during_litigation(app, overdue, staff):
    loan = overdue()
    do(loan, "phone_collection", staff["collector"], **CALL)
    at(dt.date(2026, 8, 10), 10)
    run_daily(dt.date(2026, 8, 10))
    fire_due_timers()
    do(loan, "approve_litigation", staff["leader"], litigation_decision="approve",
       litigation_comment="sue")
    filing = ready(loan, "legal_filing")
    # A partial repayment is noted; the legal step stays open, the same task.
    pay(loan, "1000.00", "R1", staff["admin"])
    assert ready(loan, "legal_filing").id == filing.id
    assert collection(loan).status == "running"
    noted = AuditEvent.query.filter_by(action="collection.repayment_noted").one()
    assert noted.data["overdue_cleared"] is False
    do(loan, "legal_filing", staff["lawyer"], court="杭州市西湖区人民法院",
       court_case_no="(2026)浙0106民初9号", filed_on="2026-08-11", filed_documents=["complaint"])
    preservation = ready(loan, "legal_preservation")
    # Paying everything overdue (installments of 6 May and 19 June) ends collection.
    pay(loan, str(overdue_now(loan, accrue=True)), "R2", staff["admin"])
    assert HumanTask.query.get(preservation.id).state == "cancelled"
    instance = collection(loan)
    assert instance.status == "completed" and instance.next_timer_at is None
    assert ready(loan) == []
    notes = [e.note for e in ContactLogEntry.query.filter_by(loan_id=loan.id, kind="note")
             .order_by(ContactLogEntry.id)]
    assert "collection goes on" in notes[-2] and "collection ends" in notes[-1]


def test_monthly_written_notice(app, overdue, staff):
    loan = overdue()
    at(dt.date(2026, 6, 8), 10, 0)
    fire_due_timers()
    assert "written_notice" not in ready(loan)
    run_daily(dt.date(2026, 6, 8))
    at(dt.date(2026, 6, 8), 10, 1)
    fire_due_timers()
    task = ready(loan, "written_notice")
    assert task.lane == "collector" and task.context["dpd"] == 33
    assert task.context["notice_due_on"] == "2026-06-08"
    assert "phone_collection" in ready(loan)  # phone collection goes on alongside
    with pytest.raises(InvalidData):  # a signed receipt needs who and when
        complete_task(task.id, staff["collector"], data={
            "notice_sent_on": "2026-06-08", "notice_channel": "in_person",
            "notice_address": "杭州市西湖区", "receipt_status": "signed"})
    do(loan, "written_notice", staff["collector"], notice_sent_on="2026-06-08",
       notice_channel="in_person", notice_address="杭州市西湖区", receipt_status="signed",
       receipt_signed_by="张伟", receipt_signed_on="2026-06-08")
    entry = ContactLogEntry.query.filter_by(loan_id=loan.id, kind="note").one()
    assert "signed by 张伟" in entry.note
    assert actions() == ["collection.notice_sent"]
    # The next one a month later.
    assert collection(loan).next_timer_at.replace(tzinfo=UTC) <= dt.datetime(
        2026, 7, 8, 2, 0, tzinfo=UTC)
    at(dt.date(2026, 7, 8), 10, 1)
    fire_due_timers()
    assert ready(loan, "written_notice")


def test_collection_pages_show_rules_window_and_the_proposal(app, overdue, staff):
    loan = overdue()
    collector = app.test_client()
    login(collector, "collector")
    task = ready(loan, "phone_collection")
    page = collector.get(f"/tasks/{task.id}", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Next allowed call window" in html and "2026-05-08 09:30" in html
    # The stage's rules in the page's language only, and the stage by its name.
    assert "borrower only" in html and "只联系借款人本人" not in html
    assert "DPD 1–3 (golden period)" in html
    zh = collector.get(f"/tasks/{task.id}", headers={"Accept-Language": "zh-CN"})
    assert "只联系借款人本人" in zh.get_data(as_text=True)
    # The collector proposes a visit through the web form; the leader sees the reason.
    done = collector.post(f"/tasks/{task.id}", data=dict(
        CALL, answered_by="nobody", collection_result="no_answer", next_step="propose_visit",
        visit_reason="no answer for a week"))
    assert done.status_code == 302
    leader = app.test_client()
    login(leader, "leader")
    approval = ready(loan, "approve_visit")
    html = leader.get(f"/tasks/{approval.id}", headers={"Accept-Language": "en"}).get_data(
        as_text=True)
    assert "no answer for a week" in html
    # The collector may see it but not decide it.
    refused = collector.post(f"/tasks/{approval.id}", data={"visit_decision": "approve",
                                                              "visit_comment": "me"})
    assert refused.status_code in (302, 403)
    assert HumanTask.query.get(approval.id).state == "ready"


def test_rule_whoever_proposes_an_escalation_never_approves_it(app, overdue, staff):
    """Issue 11 rule 6: four eyes on escalation approvals, even for someone holding both the
    collector's and the leader's roles."""
    both = create_user("both", PASSWORD, ["collector", "dept_head"])
    loan = overdue()
    do(loan, "phone_collection", both, **dict(
        CALL, answered_by="nobody", collection_result="no_answer", next_step="propose_visit",
        visit_reason="no answer for a week"))
    task = ready(loan, "approve_visit")
    with pytest.raises(NotAllowed) as refused:
        complete_task(task.id, both, data={"visit_decision": "approve", "visit_comment": "go"})
    assert refused.value.code == "four_eyes"
    do(loan, "approve_visit", staff["leader"], visit_decision="approve", visit_comment="go")
    do(loan, "visit_report", both, visit_address="杭州市西湖区", visit_met="借款人",
       visit_findings="refuses to pay", visit_situation="wilful_default")
    task = ready(loan, "approve_litigation")
    with pytest.raises(NotAllowed):
        complete_task(task.id, both, data={"litigation_decision": "approve",
                                           "litigation_comment": "sue"})


def test_rule_first_phone_task_shows_calls_today_and_the_contacts(app, overdue, staff):
    """Issue 11 rule 7: the first phone task of a case (before any call was logged) already
    shows the calls per window and the contacts with whether each knows of the loan."""
    from tests.test_contact_rules import PEOPLE
    loan = overdue(**PEOPLE)
    context = ready(loan, "phone_collection").context
    assert context["calls_today"] == (
        "2026-05-08: 09:30–11:00 0/3 · 12:30–13:30 0/2 · 14:30–15:30 0/2 · 19:00–21:00 0/2")
    assert "王芳" in context["contacts_on_file_zh"] and "不知道贷款" in context["contacts_on_file_zh"]
    assert "赵六 (guarantor)" in context["contacts_on_file_en"]


def test_rule_call_window_text_is_in_one_language(app, overdue, staff):
    """A window named in a message says Beijing time in the reader's language only; task data
    keeps the window without words (the form's label names Beijing time per language)."""
    from flask_babel import force_locale
    from collection.windows import beijing_time
    from notifications.models import Notification
    from tests.test_contact_rules import BORROWER, PEOPLE, hand_log
    staff["leader"].locale = "en"
    create_user("leader_zh", PASSWORD, ["dept_head"])
    loan = overdue(**PEOPLE)
    assert ready(loan, "phone_collection").context["next_call_window"] == \
        "2026-05-08 09:30–11:00"
    for minute in (35, 45, 55):
        at(dt.date(2026, 5, 8), 9, minute)
        hand_log(loan, staff["collector"], BORROWER, "no_answer")
    at(dt.date(2026, 5, 8), 10, 10)
    do(loan, "phone_collection", staff["collector"], **dict(
        CALL, answered_by="nobody", collection_result="no_answer"))
    bodies = {n.recipient: n.body for n in Notification.query.filter_by(channel="inbox")}
    assert "2026-05-08 09:30–11:00 (Beijing time)" in bodies["leader"]
    assert "北京时间" not in bodies["leader"]
    # The Chinese leader reads the window as the zh_CN catalog says it (北京时间 once
    # translated), never both languages at once.
    with force_locale("zh_CN"):
        assert beijing_time("2026-05-08 09:30–11:00") in bodies["leader_zh"]
    assert not ("北京时间" in bodies["leader_zh"] and "Beijing time" in bodies["leader_zh"])
