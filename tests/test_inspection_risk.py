"""Periodic inspection (DOMAIN.md §5.6) and risk warning (§5.7) on the fake clock."""
import datetime as dt
from decimal import Decimal

import pytest

from accounts.operations import create_user
from audit.models import AuditEvent
from cases.models import Loan, RiskSignal
from cases.operations import register_loan
from extensions import db
from ledger.repayments import post_repayment
from ledger.schedule import recall_loan
from ledger.verify import verify
from notifications.models import Notification
from tests.conftest import HANDOVER_DATA, login
from tests.test_servicing import hand_over, three_installment_payload
from workflows import clock
from workflows.errors import InvalidData, NotAllowed
from workflows.inbox import open_tasks_of_case
from workflows.models import HumanTask, ProcessInstance
from workflows.service import running_instances
from workflows.tasks import complete_task
from workflows.timers import fire_due_timers

UTC = dt.timezone.utc
# The loan of test_servicing is disbursed on 2026-03-02: monthly inspections fall on the 2nd,
# moved to the next working day, at 09:00 Beijing (01:00 UTC).
FIRST = dt.datetime(2026, 4, 2, 1, 0, tzinfo=UTC)
SECOND = dt.datetime(2026, 5, 6, 1, 0, tzinfo=UTC)  # May 2 falls in the Labour Day holiday
SECOND_AFTER_QUARTER = dt.datetime(2026, 6, 2, 1, 0, tzinfo=UTC)

REPORT = {
    "licence_status": "normal", "enforcement_company": "none",
    "enforcement_legal_rep": "none", "enforcement_shareholders": "none",
    "pre_visit_note": "营业执照存续，无被执行记录",
    "business_changed": "no", "staff_premises": "35 staff, rented workshop",
    "cash_receivables": "receivables up 20%", "suppliers_customers": "stable",
    "revenue_margin": "revenue flat, margin 18%", "funds_use": "as_stated",
    "funds_use_note": "raw materials, invoices seen", "other_debts": "bank loan 1m",
    "collateral_check": "workshop in good order", "repayment_source": "sales receipts",
    "client_needs": "none", "methods": ["ask", "review", "observe"],
    "documents_collected": ["bank_statements", "invoices"], "risk_report": "low risk",
    "risk_signals": "none"}


@pytest.fixture
def staff(deployed, users):
    users = dict(users)
    users["boss"] = create_user("boss", "secret-pass", ["dept_head"])
    users["risk"] = create_user("risk", "secret-pass", ["risk_manager"])
    users["both"] = create_user("both", "secret-pass", ["dept_head", "risk_manager"])
    return users


def inspection_instance(loan):
    return ProcessInstance.query.filter_by(case_id=loan.id, business_key="inspection").one()


def task(loan, bpmn_id):
    return HumanTask.query.filter_by(case_id=loan.id, bpmn_id=bpmn_id, state="ready").one()


def served_by(manager, users, frequency="monthly", loan_no="S-1"):
    """A registered 3-installment loan managed by `manager`, with the given frequency."""
    loan = register_loan(three_installment_payload(loan_no, account_manager=manager),
                         users["admin"])
    complete_task(open_tasks_of_case(loan.id)[0].id, users[manager], data=HANDOVER_DATA)
    complete_task(open_tasks_of_case(loan.id)[0].id, users["plo"],
                  data={"check_result": "complete"})
    complete_task(open_tasks_of_case(loan.id)[0].id, users["plo"], data={
        "ledger_no": "TZ", "risk_group": "normal", "inspection_frequency": frequency})
    return db.session.get(Loan, loan.id)


def fire_at(moment):
    with clock.frozen_at(moment):
        return fire_due_timers()


def run_cycle(loan, users, inspector, at, report=None):
    """Fire the inspection day, inspect, review, approve."""
    fire_at(at + dt.timedelta(seconds=1))
    complete_task(task(loan, "inspect").id, users[inspector], data=report or REPORT)
    complete_task(task(loan, "review").id, users["plo"], data={"review_result": "approved"})
    complete_task(task(loan, "approve").id, users["boss"], data={"approval_result": "approved"})


def test_inspection_fires_on_schedule_and_loops(app, staff):
    loan = served_by("am", staff)
    instance = inspection_instance(loan)
    assert instance.status == "running"
    assert instance.next_timer_at.replace(tzinfo=UTC) == FIRST
    # A timer fires only strictly after its time.
    fire_at(FIRST)
    assert HumanTask.query.filter_by(case_id=loan.id, bpmn_id="inspect").count() == 0
    fire_at(FIRST + dt.timedelta(seconds=1))
    inspect = task(loan, "inspect")
    assert inspect.lane == "account_manager" and inspect.candidate_user_id == staff["am"].id
    assert inspect.context["inspection_on"] == "2026-04-02"
    assert inspect.form_key == "inspection_report" and inspect.due_at is not None
    with pytest.raises(InvalidData) as err:
        complete_task(inspect.id, staff["am"], data=REPORT | {
            "business_changed": "yes", "risk_signals": "found"})
    assert {"business_change_note", "signal_categories", "signal_description"} <= set(
        err.value.field_errors)
    complete_task(inspect.id, staff["am"], data=REPORT)
    # The reviewer sees the inspection record on the task page, with readable choices.
    client = app.test_client()
    login(client, "plo")
    page = client.get(f"/tasks/{task(loan, 'review').id}", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert "low risk" in page.get_data(as_text=True) and "Bank statements" in page.get_data(
        as_text=True)
    complete_task(task(loan, "review").id, staff["plo"], data={"review_result": "approved"})
    approve = task(loan, "approve")
    assert approve.lane == "dept_head"
    complete_task(approve.id, staff["boss"], data={"approval_result": "approved"})
    # No signal found: nothing raised, and the next cycle waits for the next inspection day.
    assert RiskSignal.query.count() == 0
    instance = inspection_instance(loan)
    assert instance.status == "running"
    assert instance.next_timer_at.replace(tzinfo=UTC) == SECOND
    assert AuditEvent.query.filter_by(case_id=loan.id, action="inspection.approved").count() == 1
    fire_at(SECOND + dt.timedelta(seconds=1))
    assert task(loan, "inspect").context["inspection_on"] == "2026-05-06"


def test_four_eyes_returns_and_signals_reach_the_risk_manager(app, staff):
    loan = served_by("dual", staff)
    fire_at(FIRST + dt.timedelta(seconds=1))
    found = REPORT | {"risk_signals": "found", "signal_categories": ["2", "7"],
                      "signal_description": "账户流水骤减，客户询问展期"}
    complete_task(task(loan, "inspect").id, staff["dual"], data=found)
    # Issue 11 rule 9: the signals found start their risk warnings at once, before review.
    assert sorted(s.category for s in RiskSignal.query) == [2, 7]
    # The inspector holds the post-loan officer role too, and still may not review.
    with pytest.raises(NotAllowed) as err:
        complete_task(task(loan, "review").id, staff["dual"], data={"review_result": "approved"})
    assert err.value.code == "four_eyes"
    with pytest.raises(InvalidData):
        complete_task(task(loan, "review").id, staff["plo"], data={"review_result": "returned"})
    complete_task(task(loan, "review").id, staff["plo"], data={
        "review_result": "returned", "review_remarks": "补充银行流水"})
    again = task(loan, "inspect")
    assert again.candidate_user_id == staff["dual"].id
    assert again.context["review_remarks"] == "补充银行流水"
    complete_task(again.id, staff["dual"], data=found)
    complete_task(task(loan, "review").id, staff["plo2"], data={"review_result": "approved"})
    complete_task(task(loan, "approve").id, staff["boss"], data={
        "approval_result": "returned", "approval_remarks": "核实资金链"})
    assert task(loan, "inspect").context["approval_remarks"] == "核实资金链"
    # Submitted again while its warnings are undecided: not raised twice.
    assert RiskSignal.query.count() == 2
    complete_task(task(loan, "inspect").id, staff["dual"], data=found)
    complete_task(task(loan, "review").id, staff["plo"], data={"review_result": "approved"})
    complete_task(task(loan, "approve").id, staff["boss"], data={"approval_result": "approved"})

    signals = RiskSignal.query.order_by(RiskSignal.category).all()
    assert [(s.category, s.source, s.raised_by_id) for s in signals] == [
        (2, "inspection", staff["dual"].id), (7, "inspection", staff["dual"].id)]
    warnings = running_instances(loan.id, "risk_warning")
    assert sorted(w.id for w in warnings) == sorted(s.instance_id for s in signals)
    opinions = HumanTask.query.filter_by(case_id=loan.id, bpmn_id="opinion", state="ready").all()
    assert len(opinions) == 2 and {t.lane for t in opinions} == {"dept_head"}
    opinion = next(t for t in opinions if t.instance_id == signals[0].instance_id)
    assert opinion.context["category"] == 2  # shown by the form as "2. 现金流异常"
    assert opinion.context["signal_description"] == "账户流水骤减，客户询问展期"
    # Both must weigh in: whoever gave the opinion may not decide.
    complete_task(opinion.id, staff["both"], data={"assessment": "资金链紧张",
                                                   "recommended": "closer_monitoring"})
    decide = HumanTask.query.filter_by(instance_id=opinion.instance_id, bpmn_id="decide",
                                       state="ready").one()
    assert decide.lane == "risk_manager"
    with pytest.raises(NotAllowed):
        complete_task(decide.id, staff["both"], data={"decision": "preservation",
                                                      "decision_note": "x"})
    # The inspection goes on with its next cycle.
    assert inspection_instance(loan).next_timer_at.replace(tzinfo=UTC) == SECOND


def decide(loan, staff, decision, signal):
    opinion = HumanTask.query.filter_by(instance_id=signal.instance_id, bpmn_id="opinion",
                                        state="ready").one()
    complete_task(opinion.id, staff["boss"], data={"assessment": "需处置",
                                                   "recommended": decision})
    decide_task = HumanTask.query.filter_by(instance_id=signal.instance_id, bpmn_id="decide",
                                            state="ready").one()
    complete_task(decide_task.id, staff["risk"], data={"decision": decision,
                                                       "decision_note": "按领导意见办理"})
    assert db.session.get(ProcessInstance, signal.instance_id).status == "completed"
    signal = db.session.get(RiskSignal, signal.id)
    assert signal.decision == decision and signal.decision_note == "按领导意见办理"
    assert signal.decided_at is not None
    event = AuditEvent.query.filter_by(case_id=loan.id, action="risk.decided").one()
    assert event.actor_id == staff["risk"].id and event.data["decision"] == decision
    return signal, event


def raised(loan, staff, category=5, text="被供应商起诉"):
    from monitoring.risk import raise_signal
    return raise_signal(loan, staff["am"], category, text)


def test_closer_monitoring_changes_the_frequency_from_the_next_cycle(app, staff):
    loan = served_by("am", staff, frequency="quarterly")
    assert inspection_instance(loan).next_timer_at.replace(tzinfo=UTC) == SECOND_AFTER_QUARTER
    signal, event = decide(loan, staff, "closer_monitoring", raised(loan, staff))
    assert db.session.get(Loan, loan.id).inspection_frequency == "monthly"
    assert (event.data["old_frequency"], event.data["new_frequency"]) == ("quarterly", "monthly")
    plan = AuditEvent.query.filter_by(case_id=loan.id, action="case.monitoring_plan").order_by(
        AuditEvent.id).all()
    assert plan[-1].data["inspection_frequency"] == "monthly"
    # The cycle already planned stays; the one after it is a month later.
    assert inspection_instance(loan).next_timer_at.replace(tzinfo=UTC) == SECOND_AFTER_QUARTER
    run_cycle(loan, staff, "am", SECOND_AFTER_QUARTER)
    assert inspection_instance(loan).next_timer_at.replace(tzinfo=UTC) == dt.datetime(
        2026, 7, 2, 1, 0, tzinfo=UTC)


def test_rule_early_recall_accelerates_the_loan(app, staff):
    loan = served_by("am", staff)
    signal, event = decide(loan, staff, "early_recall", raised(loan, staff, 6, "报表造假"))
    assert event.data["early_recall"] is True
    sent = {n.recipient: n for n in Notification.query.filter_by(loan_id=loan.id)
            if "提前收回" in n.body}
    assert set(sent) == {"13800138000", "am"}
    assert db.session.get(Loan, loan.id).inspection_frequency == "monthly"
    # The whole balance falls due on the recall day (disbursement day here: no interest has
    # run yet, so all of it is given back); collection starts at once.
    loan = db.session.get(Loan, loan.id)
    assert {i.due_on for i in loan.installments} == {dt.date(2026, 3, 2)}
    assert [i.interest_due for i in loan.installments] == [0, 0, 0]
    assert loan.outstanding == Decimal("300000.00") and event.data["collection_started"]
    assert [i.definition.process_key for i in running_instances(loan.id, "collection")] == [
        "collection"]
    assert not running_instances(loan.id, "reminders") and verify() == []
    # A loan is recalled once: a second recall changes nothing.
    assert recall_loan(loan.id, dt.date(2026, 3, 3), "again", staff["risk"]) is None


def test_preservation_is_recorded(app, staff):
    loan = served_by("am", staff)
    signal, event = decide(loan, staff, "preservation", raised(loan, staff, 8, "抵押物被查封"))
    assert event.data["preservation"] is True
    # Issue 11 rule 10: collection starts at its legal preservation step.
    assert event.data["preservation_step"] == "started"
    assert len(running_instances(loan.id, "collection")) == 1


def test_start_collection_starts_it_once(app, staff):
    loan = served_by("am", staff)
    first = raised(loan, staff, 1, "失联")
    second = raised(loan, staff, 7, "高息借款")
    signal, event = decide(loan, staff, "collection", first)
    assert event.data["collection_started"] is True
    [collection] = running_instances(loan.id, "collection")
    call = HumanTask.query.filter_by(instance_id=collection.id, bpmn_id="phone_collection").one()
    assert call.lane == "collector"
    assert (call.context["dpd"], call.context["stage"]) == (0, "current")
    # A second decision to collect does not start a second collection.
    opinion = HumanTask.query.filter_by(instance_id=second.instance_id, bpmn_id="opinion").one()
    complete_task(opinion.id, staff["boss"], data={"assessment": "x", "recommended": "collection"})
    decide_task = HumanTask.query.filter_by(instance_id=second.instance_id, bpmn_id="decide").one()
    complete_task(decide_task.id, staff["risk"], data={"decision": "collection",
                                                       "decision_note": "y"})
    assert len(running_instances(loan.id, "collection")) == 1
    assert db.session.get(RiskSignal, second.id).decision == "collection"


def test_staff_raise_a_signal_from_the_case_page(app, staff):
    loan = served_by("am", staff)
    client = app.test_client()
    login(client, "am")
    page = client.get(f"/cases/{loan.loan_no}", headers={"Accept-Language": "en"})
    html = page.get_data(as_text=True)
    assert 'id="risk-signal-form"' in html and "Raise a risk signal" in html
    empty = client.post(f"/cases/{loan.loan_no}/risk-signals",
                        data={"risk-category": "3", "risk-description": ""})
    assert empty.status_code == 302 and RiskSignal.query.count() == 0
    ok = client.post(f"/cases/{loan.loan_no}/risk-signals",
                     data={"risk-category": "3", "risk-description": "同行反映拖欠货款"})
    assert ok.status_code == 302 and ok.headers["Location"].endswith("#risk-signals")
    signal = RiskSignal.query.one()
    assert (signal.category, signal.source, signal.raised_by_id) == (3, "staff", staff["am"].id)
    assert HumanTask.query.filter_by(instance_id=signal.instance_id, bpmn_id="opinion").one()
    page = client.get(f"/cases/{loan.loan_no}", headers={"Accept-Language": "en"})
    assert "同行反映拖欠货款" in page.get_data(as_text=True)
    # The leader's task names the category, the source and the reporter in words.
    boss = app.test_client()
    login(boss, "boss")
    opinion = HumanTask.query.filter_by(instance_id=signal.instance_id, bpmn_id="opinion").one()
    for lang, words in (("zh-CN", ("3. 外部声誉不佳", "人工上报", staff["am"].label)),
                        ("en", ("3. Poor external reputation", "Raised by staff"))):
        html = boss.get(f"/tasks/{opinion.id}", headers={"Accept-Language": lang}).get_data(
            as_text=True)
        for word in words:
            assert word in html, (lang, word)
    assert "Poor external reputation" not in boss.get(
        f"/tasks/{opinion.id}", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)

    auditor = app.test_client()
    login(auditor, "compliance")
    shown = auditor.get(f"/cases/{loan.loan_no}").get_data(as_text=True)
    assert "同行反映拖欠货款" in shown and 'id="risk-signal-form"' not in shown
    refused = auditor.post(f"/cases/{loan.loan_no}/risk-signals",
                           data={"risk-category": "3", "risk-description": "x"})
    assert refused.status_code == 403
    assert RiskSignal.query.count() == 1
    # Another account manager's loan: refused as well.
    other = app.test_client()
    login(other, "am2")
    assert other.post(f"/cases/{loan.loan_no}/risk-signals",
                      data={"risk-category": "3", "risk-description": "x"}).status_code == 403


def test_short_loans_are_not_inspected_and_closure_ends_the_cycle(app, staff):
    short = register_loan(three_installment_payload(
        "SHORT", maturity_on="2026-03-30",
        schedule=[{"due_on": "2026-03-30", "principal": "300000.00", "interest": "500.00"}]),
        staff["admin"])
    hand_over(short, staff)
    assert ProcessInstance.query.filter_by(case_id=short.id,
                                           business_key="inspection").count() == 0
    loan = served_by("am", staff)
    post_repayment(loan, {"amount": "303000.00", "paid_at": "2026-03-03",
                          "external_ref": "ALL"}, staff["admin"])
    assert inspection_instance(loan).status == "cancelled"


def test_inspection_in_an_unknown_calendar_year_is_a_visible_problem(app, staff):
    with clock.frozen_at(dt.datetime(2026, 11, 20, 2, 0, tzinfo=UTC)):
        loan = register_loan(three_installment_payload(
            "Q-2027", disbursed_on="2026-11-16", maturity_on="2026-12-28",
            schedule=[{"due_on": "2026-12-28", "principal": "300000.00", "interest": "500.00"}]),
            staff["admin"])
        complete_task(open_tasks_of_case(loan.id)[0].id, staff["am"], data=HANDOVER_DATA)
        complete_task(open_tasks_of_case(loan.id)[0].id, staff["plo"],
                      data={"check_result": "complete"})
        complete_task(open_tasks_of_case(loan.id)[0].id, staff["plo"], data={
            "ledger_no": "TZ", "risk_group": "low", "inspection_frequency": "quarterly"})
    from cases.models import CaseProblem
    problem = CaseProblem.query.filter_by(loan_id=loan.id, resolved_at=None).one()
    assert (problem.year, problem.detail["process"]) == (2027, "inspection")
    # Not moved to a working day (the calendar is unknown), but still scheduled on the date.
    assert inspection_instance(loan).next_timer_at.replace(tzinfo=UTC) == dt.datetime(
        2027, 2, 16, 1, 0, tzinfo=UTC)


def test_rule_high_risk_loans_are_inspected_monthly(app, staff):
    """Issue 11 rule 5: the risk group drives the frequency; high risk never less than
    monthly."""
    loan = register_loan(three_installment_payload("S-9", account_manager="am"),
                         staff["admin"])
    complete_task(open_tasks_of_case(loan.id)[0].id, staff["am"], data=HANDOVER_DATA)
    complete_task(open_tasks_of_case(loan.id)[0].id, staff["plo"],
                  data={"check_result": "complete"})
    register = open_tasks_of_case(loan.id)[0]
    with pytest.raises(InvalidData) as refused:
        complete_task(register.id, staff["plo"], data={
            "ledger_no": "TZ", "risk_group": "high", "inspection_frequency": "quarterly"})
    assert "inspection_frequency" in refused.value.field_errors
    complete_task(register.id, staff["plo"], data={
        "ledger_no": "TZ", "risk_group": "high", "inspection_frequency": "monthly"})
    assert db.session.get(Loan, loan.id).inspection_frequency == "monthly"
