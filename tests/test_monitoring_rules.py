"""Issue 11, monitoring rules: the inspection plan changes only with the leader's approval
(rule 5), inspection findings and extension requests raise risk signals at once and a sudden
event allows an emergency revisit (rule 9), the tracking check starts the follow-up call
(rule 8), and the closure and monitoring diagrams show their checks, thresholds and system
work (rule 14)."""
import datetime as dt

import pytest
from lxml import etree

from accounts.operations import create_user
from audit.models import AuditEvent
from cases.models import Loan, RiskSignal
from extension_requests.operations import request_extension
from extensions import db
from monitoring.inspection_plan import propose_frequency_change, start_emergency_revisit
from tests.conftest import ROOT, login, simultaneous_posts
from tests.test_servicing import reminder_instances, serviced  # noqa: F401  (fixture)
from tests.test_inspection_risk import (FIRST, REPORT, SECOND_AFTER_QUARTER, fire_at,
                                        inspection_instance, served_by, staff, task)  # noqa: F401
from workflows import clock
from workflows.errors import Conflict, InvalidData, NotAllowed
from workflows.models import HumanTask, ProcessInstance
from workflows.service import PRIORITIES, running_instances
from workflows.tasks import complete_task
from workflows.timers import fire_due_timers

UTC = dt.timezone.utc
BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"


def next_inspection_at(loan):
    return inspection_instance(loan).next_timer_at.replace(tzinfo=UTC)


def change_task(loan):
    return HumanTask.query.filter_by(case_id=loan.id, bpmn_id="approve_change",
                                     state="ready").one()


def actions(loan, action):
    return AuditEvent.query.filter_by(case_id=loan.id, action=action).order_by(
        AuditEvent.id).all()


# ---------------------------------------------------------------- rule 5

def test_rule_inspection_frequency_change_needs_the_leaders_approval_with_a_reason(app, staff):
    loan = served_by("am", staff)
    assert next_inspection_at(loan) == FIRST
    # A reason is required; the current frequency is no change.
    with pytest.raises(InvalidData) as err:
        propose_frequency_change(loan, staff["plo"], "quarterly", "  ")
    assert "reason" in err.value.field_errors
    with pytest.raises(InvalidData) as err:
        propose_frequency_change(loan, staff["plo"], "monthly", "no change")
    assert "frequency" in err.value.field_errors
    # Compliance never changes the plan.
    with pytest.raises(NotAllowed):
        propose_frequency_change(loan, staff["compliance"], "quarterly", "x")

    propose_frequency_change(loan, staff["plo"], "quarterly", "经营稳定，连续六个月按时还款")
    # Nothing changes before the leader decides; one proposal at a time.
    assert db.session.get(Loan, loan.id).inspection_frequency == "monthly"
    assert next_inspection_at(loan) == FIRST
    with pytest.raises(Conflict):
        propose_frequency_change(loan, staff["plo2"], "bimonthly", "another")
    approval = change_task(loan)
    assert approval.lane == "dept_head"
    assert approval.context["change_reason"] == "经营稳定，连续六个月按时还款"
    # Rejected: the plan stays as it was.
    with pytest.raises(InvalidData):  # a rejection gives remarks
        complete_task(approval.id, staff["boss"], data={"frequency_decision": "rejected"})
    complete_task(approval.id, staff["boss"], data={"frequency_decision": "rejected",
                                                    "frequency_remarks": "再观察一个月"})
    assert db.session.get(Loan, loan.id).inspection_frequency == "monthly"
    assert next_inspection_at(loan) == FIRST
    assert actions(loan, "inspection.frequency_rejected")[-1].actor_id == staff["boss"].id

    # Four eyes: a leader who proposes may not approve their own proposal.
    propose_frequency_change(loan, staff["both"], "quarterly", "风险分组下调")
    with pytest.raises(NotAllowed):
        complete_task(change_task(loan).id, staff["both"], data={"frequency_decision":
                                                                  "approved"})
    complete_task(change_task(loan).id, staff["boss"], data={"frequency_decision": "approved"})
    # Approved: the frequency changes and the waiting cycle's timer moves at once.
    assert db.session.get(Loan, loan.id).inspection_frequency == "quarterly"
    assert next_inspection_at(loan) == SECOND_AFTER_QUARTER
    plan = actions(loan, "case.monitoring_plan")[-1]
    assert (plan.data["old_frequency"], plan.data["inspection_frequency"],
            plan.data["reason"], plan.actor_id) == ("monthly", "quarterly", "风险分组下调",
                                                    staff["boss"].id)
    # The re-planned cycle keeps its number and fires on the new day.
    fire_at(SECOND_AFTER_QUARTER + dt.timedelta(seconds=1))
    inspect = task(loan, "inspect")
    assert inspect.context["inspection_on"] == "2026-06-02"
    assert inspection_instance(loan).status == "running"


def test_a_high_risk_loan_keeps_monthly_inspections(app, staff):
    loan = served_by("am", staff)
    db.session.get(Loan, loan.id).risk_group = "high"
    db.session.commit()
    with pytest.raises(InvalidData) as err:
        propose_frequency_change(db.session.get(Loan, loan.id), staff["plo"], "quarterly",
                                 "x")
    assert "frequency" in err.value.field_errors


def test_frequency_change_from_the_case_page(app, staff):
    loan = served_by("am", staff)
    web = app.test_client()
    login(web, "plo")
    page = web.get(f"/cases/{loan.loan_no}", headers={"Accept-Language": "en"})
    assert 'id="inspection-frequency-form"' in page.get_data(as_text=True)
    empty = web.post(f"/cases/{loan.loan_no}/inspection-frequency",
                     data={"plan-frequency": "quarterly", "plan-reason": ""})
    assert empty.status_code == 302 and not running_instances(loan.id, "inspection_frequency")
    ok = web.post(f"/cases/{loan.loan_no}/inspection-frequency",
                  data={"plan-frequency": "quarterly", "plan-reason": "经营稳定"})
    assert ok.status_code == 302 and ok.headers["Location"].endswith("#inspection-plan")
    assert change_task(loan).context["proposed_frequency"] == "quarterly"
    page = web.get(f"/cases/{loan.loan_no}", headers={"Accept-Language": "en"})
    assert 'id="inspection-plan-pending"' in page.get_data(as_text=True)
    auditor = app.test_client()
    login(auditor, "compliance")
    assert 'id="inspection-plan"' not in auditor.get(f"/cases/{loan.loan_no}").get_data(
        as_text=True)
    assert auditor.post(f"/cases/{loan.loan_no}/inspection-frequency", data={
        "plan-frequency": "bimonthly", "plan-reason": "x"}).status_code == 403


# ---------------------------------------------------------------- rule 9

def test_rule_inspection_findings_raise_risk_signals_at_once(app, staff):
    loan = served_by("am", staff)
    fire_at(FIRST + dt.timedelta(seconds=1))
    findings = REPORT | {"funds_use": "misused", "funds_use_note": "贷款用于购买理财产品",
                         "enforcement_legal_rep": "found", "licence_status": "revoked",
                         "pre_visit_note": "法定代表人被列为被执行人"}
    complete_task(task(loan, "inspect").id, staff["am"], data=findings)
    # Before any review or approval: one signal per category, each with its risk warning.
    assert task(loan, "review")
    signals = RiskSignal.query.order_by(RiskSignal.category).all()
    assert [(s.category, s.source, s.raised_by_id) for s in signals] == [
        (2, "inspection", staff["am"].id), (5, "inspection", staff["am"].id),
        (9, "inspection", staff["am"].id)]
    assert "挪用" in signals[0].description and "理财" in signals[0].description
    assert "被执行" in signals[1].description
    opinions = HumanTask.query.filter_by(case_id=loan.id, bpmn_id="opinion",
                                         state="ready").all()
    assert sorted(t.instance_id for t in opinions) == sorted(s.instance_id for s in signals)
    # Returned and submitted again: the undecided warnings are not raised twice.
    complete_task(task(loan, "review").id, staff["plo"], data={
        "review_result": "returned", "review_remarks": "补充说明"})
    complete_task(task(loan, "inspect").id, staff["am"], data=findings)
    assert RiskSignal.query.count() == 3
    complete_task(task(loan, "review").id, staff["plo"], data={"review_result": "approved"})
    complete_task(task(loan, "approve").id, staff["boss"], data={"approval_result": "approved"})
    assert RiskSignal.query.count() == 3
    approved = actions(loan, "inspection.approved")[-1]
    assert sorted(approved.data["signals"]) == sorted(s.id for s in signals)
    # A clean report raises nothing.
    assert inspection_instance(loan).status == "running"


def test_rule_an_extension_request_raises_a_category_7_signal(app, staff):
    loan = served_by("am", staff)
    request_extension(loan, {"new_maturity_on": "2026-12-15", "proposed_rate": "0.0500",
                             "reason": "下游回款延迟"}, staff["am"])
    signal = RiskSignal.query.one()
    assert (signal.category, signal.source, signal.raised_by_id) == (7, "extension",
                                                                    staff["am"].id)
    assert "下游回款延迟" in signal.description
    warning = db.session.get(ProcessInstance, signal.instance_id)
    assert warning.status == "running"
    assert HumanTask.query.filter_by(instance_id=warning.id, bpmn_id="opinion").one().lane \
        == "dept_head"
    assert actions(loan, "risk.signal_raised")[-1].data["source"] == "extension"
    web = app.test_client()
    login(web, "am")
    page = web.get(f"/cases/{loan.loan_no}", headers={"Accept-Language": "en"})
    assert "Extension request" in page.get_data(as_text=True)


def test_rule_a_sudden_event_allows_an_emergency_revisit(app, staff):
    loan = served_by("am", staff)
    with pytest.raises(InvalidData) as err:
        start_emergency_revisit(loan, staff["plo"], "")
    assert "reason" in err.value.field_errors
    with pytest.raises(NotAllowed):
        start_emergency_revisit(loan, staff["am2"], "not my loan")
    # From the case page, by a leader, with the reason: the inspection task exists at once.
    web = app.test_client()
    login(web, "boss")
    page = web.get(f"/cases/{loan.loan_no}", headers={"Accept-Language": "en"})
    assert 'id="emergency-inspection-form"' in page.get_data(as_text=True)
    with clock.frozen_at(dt.datetime(2026, 3, 10, 2, 0, tzinfo=UTC)):
        ok = web.post(f"/cases/{loan.loan_no}/emergency-inspection",
                      data={"revisit-reason": "实际控制人被限制出境"})
    assert ok.status_code == 302
    inspect = task(loan, "inspect")
    assert inspect.candidate_user_id == staff["am"].id and inspect.lane == "account_manager"
    assert inspect.context["emergency_reason"] == "实际控制人被限制出境"
    assert inspect.context["inspection_on"] == "2026-03-10"
    started = actions(loan, "inspection.emergency_started")[-1]
    assert (started.actor_id, started.data["reason"]) == (staff["boss"].id, "实际控制人被限制出境")
    # The periodic cycle is untouched and still waits for its day.
    assert next_inspection_at(loan) == FIRST
    # One inspection, reviewed and approved as usual, then the revisit ends.
    complete_task(inspect.id, staff["am"], data=REPORT)
    complete_task(task(loan, "review").id, staff["plo"], data={"review_result": "approved"})
    complete_task(task(loan, "approve").id, staff["boss"], data={"approval_result": "approved"})
    revisit = db.session.get(ProcessInstance, inspect.instance_id)
    assert revisit.status == "completed" and revisit.business_key != "inspection"
    assert actions(loan, "inspection.approved")[-1].data["emergency"] is True
    assert next_inspection_at(loan) == FIRST


# ---------------------------------------------------------------- rule 8

def test_rule_insufficient_balance_the_day_before_due_starts_the_follow_up_call(
        app, serviced, users):
    clerk = create_user("clerk", "secret-pass", ["back_office"])
    loan = serviced()
    with clock.frozen_at(dt.datetime(2026, 4, 30, 1, 5, tzinfo=UTC)):
        fire_due_timers()
        remind = HumanTask.query.filter_by(case_id=loan.id, bpmn_id="remind_borrower").one()
        complete_task(remind.id, clerk, data={"channel": "sms", "reached": "no_answer"})
    [first, second, _] = reminder_instances(loan)
    # The tracking check on the working day before the due date (May 6 after the holiday).
    with clock.frozen_at(dt.datetime(2026, 4, 30, 8, 1, tzinfo=UTC)):
        fire_due_timers()
        track = HumanTask.query.filter_by(instance_id=first.id, bpmn_id="track_repayment").one()
        complete_task(track.id, clerk, data={"debit_result": "insufficient",
                                             "tracking_note": "账户余额 2,000 元"})
    call = HumanTask.query.filter_by(instance_id=first.id, bpmn_id="follow_up_call",
                                     state="ready").one()
    assert (call.lane, call.priority, call.form_key) == ("back_office", PRIORITIES["high"],
                                                         "reminder_follow_up")
    # Due the same office day: 18:00 Beijing on April 30.
    assert call.due_at.replace(tzinfo=UTC) == dt.datetime(2026, 4, 30, 10, 0, tzinfo=UTC)
    with clock.frozen_at(dt.datetime(2026, 4, 30, 9, 0, tzinfo=UTC)):
        with pytest.raises(InvalidData) as err:
            complete_task(call.id, clerk, data={"reached": "yes", "follow_up_note": "x"})
        assert {"promised_on", "promised_amount"} <= set(err.value.field_errors)
        complete_task(call.id, clerk, data={
            "reached": "yes", "promised_on": "2026-05-06", "promised_amount": "99000",
            "follow_up_note": "客户称5月6日前存入", "new_phone": "13911112222"})
    assert db.session.get(ProcessInstance, first.id).status == "completed"
    assert db.session.get(Loan, loan.id).borrower.phones[0] == "13911112222"
    # Enough money (or paid): no follow-up call.
    with clock.frozen_at(dt.datetime(2026, 6, 18, 1, 5, tzinfo=UTC)):
        fire_due_timers()
        remind = HumanTask.query.filter_by(instance_id=second.id,
                                           bpmn_id="remind_borrower").one()
        complete_task(remind.id, clerk, data={"channel": "sms", "reached": "no_answer"})
    with clock.frozen_at(dt.datetime(2026, 6, 18, 8, 1, tzinfo=UTC)):
        fire_due_timers()
        track = HumanTask.query.filter_by(instance_id=second.id,
                                          bpmn_id="track_repayment").one()
        complete_task(track.id, clerk, data={"debit_result": "not_yet"})
    assert HumanTask.query.filter_by(instance_id=second.id, bpmn_id="follow_up_call").count() \
        == 0
    assert db.session.get(ProcessInstance, second.id).status == "completed"


# ---------------------------------------------------------------- rule 14 (monitoring)

def diagram(name):
    return etree.parse(str(ROOT / "bpmn" / name))


def lane_of(tree):
    return {ref.text: lane.get("name") for lane in tree.iter(f"{BPMN}lane")
            for ref in lane.iter(f"{BPMN}flowNodeRef")}


def test_monitoring_thresholds_are_on_the_diagrams():
    inspection = etree.tostring(diagram("inspection.bpmn"), encoding="unicode")
    assert 'id="months_by_frequency"' in inspection and 'id="high_risk_months"' in inspection
    reminders = diagram("reminders.bpmn")
    timers = {t.getparent().getparent().get("id"): t.text
              for t in reminders.iter(f"{BPMN}timeDate")}
    assert "subtract_working_days(due_on, lead_days), 9" in timers["wait_reminder"]
    assert "subtract_working_days(due_on, 1), 16" in timers["wait_tracking"]


def test_rule_closure_diagram_has_gateways_for_a_failed_check():
    tree = diagram("closure.bpmn")
    flows = {f.get("id"): f for f in tree.iter(f"{BPMN}sequenceFlow")}
    gateways = {g.get("id"): g for g in tree.iter(f"{BPMN}exclusiveGateway")}
    # Each check: the step, then a gateway whose condition names the confirmation, and the
    # default path (the check failed) back to the same step.
    for step, gateway, confirmed in [
            ("verify_settlement", "settlement_ok", "settlement_verified"),
            ("return_contract", "onsite_ok", "identity_checked"),
            ("release_collateral", "release_ok", "deregistration_no")]:
        assert gateway in gateways, gateway
        into = [f for f in flows.values() if f.get("sourceRef") == step]
        assert [f.get("targetRef") for f in into] == [gateway]
        back = flows[gateways[gateway].get("default")]
        assert back.get("targetRef") == step, gateway
        onward = [f for f in flows.values() if f.get("sourceRef") == gateway and f is not back]
        [condition] = [f.find(f"{BPMN}conditionExpression").text for f in onward]
        assert confirmed in condition
    assert "documents_reconciled" in flows["f4"].find(f"{BPMN}conditionExpression").text
    release = flows["f5"].find(f"{BPMN}conditionExpression").text
    assert 'collateral_action == "none"' in release and "deregistration_office" in release
    assert lane_of(tree)["archive"] == "system"


def test_a_failed_closure_check_goes_back_to_its_step(app, deployed):
    """The gateways at run time: a release without its record (e.g. through a form spec
    edited in the studio) comes back to the release step instead of closing the case."""
    from workflows.definitions import latest_definition
    from workflows.engine import new_workflow
    from SpiffWorkflow.util.task import TaskState
    workflow = new_workflow(latest_definition("closure"))
    workflow.do_engine_steps()

    def complete(bpmn_id, **data):
        [ready] = [t for t in workflow.get_tasks(state=TaskState.READY)
                   if t.task_spec.bpmn_id == bpmn_id]
        ready.data.update(data)
        ready.run()
        workflow.do_engine_steps()

    def ready_ids():
        return [t.task_spec.bpmn_id for t in workflow.get_tasks(state=TaskState.READY)]

    complete("verify_settlement", settlement_verified=False)
    assert ready_ids() == ["verify_settlement"]
    complete("verify_settlement", settlement_verified=True)
    complete("invite_borrower")
    complete("return_contract", identity_checked=True, documents_reconciled=False)
    assert ready_ids() == ["return_contract"]
    complete("return_contract", documents_reconciled=True)
    complete("release_collateral", collateral_action="released", deregistration_no="",
             released_on="2026-04-10", deregistration_office="")
    assert ready_ids() == ["release_collateral"]


def test_simultaneous_frequency_proposals_start_one_approval(app, staff):
    """Eight officers propose at the same moment over real HTTP: one approval process, the
    others refused with a message (never a 500), on SQLite and PostgreSQL alike."""
    loan = served_by("am", staff)
    loan_id, loan_no = loan.id, loan.loan_no
    db.session.commit()
    statuses = simultaneous_posts(app, "plo", f"/cases/{loan_no}/inspection-frequency",
                                  {"plan-frequency": "quarterly", "plan-reason": "经营稳定"}, 8)
    assert statuses == [302] * 8  # each back to the case page, with its message
    db.session.rollback()
    assert ProcessInstance.query.filter_by(case_id=loan_id,
                                           business_key="inspection_frequency").count() == 1
    assert AuditEvent.query.filter_by(case_id=loan_id,
                                      action="inspection.frequency_proposed").count() == 1


def test_no_plan_change_once_the_loan_is_repaid(app, staff):
    from ledger.repayments import post_repayment
    loan = served_by("am", staff)
    post_repayment(loan, {"amount": "303000.00", "paid_at": "2026-03-03",
                          "external_ref": "ALL"}, staff["admin"])
    loan = db.session.get(Loan, loan.id)
    assert loan.status == "closing"
    with pytest.raises(Conflict):
        start_emergency_revisit(loan, staff["plo"], "突发")
    with pytest.raises(Conflict):
        propose_frequency_change(loan, staff["plo"], "quarterly", "x")
    web = app.test_client()
    login(web, "plo")
    assert 'id="inspection-plan"' not in web.get(f"/cases/{loan.loan_no}").get_data(
        as_text=True)
    assert web.post(f"/cases/{loan.loan_no}/emergency-inspection",
                    data={"revisit-reason": "突发"}).status_code == 302
    assert ProcessInstance.query.filter(
        ProcessInstance.business_key.like("inspection:emergency:%")).count() == 0
