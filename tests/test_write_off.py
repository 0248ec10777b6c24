"""Write-off (核销, issue 9 item 5): proposal, department head review, general manager approval,
four eyes, the amounts booked, recoveries after it, and the proposal from a legal outcome."""
import datetime as dt
from decimal import Decimal

import pytest
from flask import render_template_string

from accounts.operations import create_user
from audit.models import AuditEvent
from collection.legal import record_legal_outcome
from cases.models import Loan
from cases.staging import run_daily
from extensions import db
from ledger.models import Charge, Repayment, WriteOff
from ledger.repayments import post_repayment
from ledger.verify import verify
from ledger.writeoff import outstanding_parts, propose_write_off, recoveries_since
from tests.conftest import PASSWORD, login
from tests.test_collection import at, do, overdue, staff  # noqa: F401  (fixtures)
from tests.test_servicing import serviced  # noqa: F401  (fixture)
from workflows.errors import Conflict, InvalidData, NotAllowed
from workflows.models import HumanTask, HumanTaskExclusion, ProcessInstance
from workflows.tasks import complete_task

REASON = "Borrower bankrupt; liquidation yielded nothing."


@pytest.fixture
def team(staff):
    spec = {"dh": ["dept_head"], "gm": ["general_manager"],
            "boss": ["dept_head", "general_manager"], "risk": ["risk_manager"],
            "plodh": ["post_loan_officer", "dept_head"]}
    return staff | {name: create_user(name, PASSWORD, roles) for name, roles in spec.items()}


def fresh(loan):
    return db.session.get(Loan, loan.id)


def task(loan, bpmn_id):
    return HumanTask.query.filter_by(case_id=loan.id, process_key="write_off", bpmn_id=bpmn_id,
                                     state="ready").one()


def instances(loan):
    return (ProcessInstance.query.filter_by(case_id=loan.id, business_key="write_off")
            .order_by(ProcessInstance.id).all())


def review(loan, user, decision="approve"):
    complete_task(task(loan, "dept_review").id, user, data={
        "review_decision": decision, "review_comment": f"dh: {decision}"})


def approve(loan, user, decision="approve"):
    complete_task(task(loan, "gm_approval").id, user, data={
        "approval_decision": decision, "approval_comment": f"gm: {decision}"})


def actions(loan, prefix="ledger.writ"):
    return [e.action for e in AuditEvent.query.filter_by(case_id=loan.id)
            .filter(AuditEvent.action.like(prefix + "%")).order_by(AuditEvent.id)]


def test_approved_write_off_books_the_balance_and_later_recoveries_still_post(
        app, overdue, team):
    loan = overdue()  # 8 May: the first installment is 2 days overdue, penalty accrued
    post_repayment(fresh(loan), {"amount": "500.00", "paid_at": "2026-05-08",
                                 "external_ref": "R1"}, team["admin"])
    propose_write_off(fresh(loan), REASON, team["plo"])
    review_task = task(loan, "dept_review")
    assert review_task.lane == "dept_head" and review_task.form_key == "write_off_review"
    assert review_task.context["proposed_by"] == "plo"
    assert review_task.context["reason"] == REASON
    assert Decimal(review_task.context["outstanding_total"]) == fresh(loan).outstanding
    review(loan, team["dh"])
    approval = task(loan, "gm_approval")
    assert approval.lane == "general_manager" and approval.form_key == "write_off_approval"
    assert {x.user_id for x in HumanTaskExclusion.query.filter_by(task_id=approval.id)} == {
        team["plo"].id, team["dh"].id}

    at(dt.date(2026, 5, 11), 10)  # approved three days later: penalty runs to that day
    approve(loan, team["gm"])
    loan = fresh(loan)
    row = WriteOff.query.filter_by(loan_id=loan.id).one()
    # 500.00 paid 35.75 penalty (2 days) and 464.25 interest; 3 more days of penalty on
    # 100 000.00 at 4.35% × 1.5 are 53.63.
    assert (row.principal, row.interest, row.penalty) == (
        Decimal("300000.00"), Decimal("2535.75"), Decimal("53.63"))
    assert outstanding_parts(loan) == {"principal": row.principal, "interest": row.interest,
                                       "penalty": row.penalty}
    assert row.written_off_on == dt.date(2026, 5, 11) and row.reason == REASON
    assert (row.proposed_by_id, row.reviewed_by_id, row.approved_by_id) == (
        team["plo"].id, team["dh"].id, team["gm"].id)
    assert row.instance_id == instances(loan)[0].id
    assert instances(loan)[0].status == "completed"
    assert loan.status == "servicing"
    assert actions(loan) == ["ledger.write_off_proposed", "ledger.written_off"]
    written = AuditEvent.query.filter_by(action="ledger.written_off").one()
    assert written.data["amount"] == "302589.38" and written.actor_id == team["gm"].id

    # Written off: no more penalty, but the debt stays recoverable.
    at(dt.date(2026, 5, 20), 10)
    penalties = Charge.query.filter_by(loan_id=loan.id, source="penalty").count()
    run_daily(dt.date(2026, 5, 20))
    assert Charge.query.filter_by(loan_id=loan.id, source="penalty").count() == penalties
    repayment = post_repayment(fresh(loan), {"amount": "1000.00", "paid_at": "2026-05-20",
                                             "external_ref": "R2"}, team["admin"])
    assert Repayment.query.filter_by(external_ref="R2").one().amount == Decimal("1000.00")
    assert repayment.penalty == Decimal("53.63")
    assert fresh(loan).outstanding == row.amount - Decimal("1000.00")
    assert [r.external_ref for r in recoveries_since(row)] == ["R2"]
    assert WriteOff.query.one().amount == Decimal("302589.38")  # the booked amount stays
    assert not verify([loan.id])

    with app.test_request_context():
        html = render_template_string('{% include "ledger/write_off.html" %}', loan=fresh(loan))
    assert "2026-05-11" in html and "¥302,589.38" in html and "¥2,535.75" in html
    assert "R2" in html and "¥1,000.00" in html
    with pytest.raises(Conflict) as err:
        propose_write_off(fresh(loan), REASON, team["plo"])
    assert err.value.code == "already_written_off"


@pytest.mark.parametrize("rejected_by", ["dept_head", "general_manager"])
def test_rejection_changes_nothing(app, serviced, team, rejected_by):
    loan = serviced()
    before = fresh(loan).outstanding
    propose_write_off(fresh(loan), REASON, team["risk"])
    if rejected_by == "dept_head":
        review(loan, team["dh"], "reject")
    else:
        review(loan, team["dh"])
        approve(loan, team["gm"], "reject")
    loan = fresh(loan)
    assert WriteOff.query.count() == 0
    assert loan.outstanding == before and loan.status == "servicing"
    assert instances(loan)[0].status == "completed"
    assert actions(loan) == ["ledger.write_off_proposed", "ledger.write_off_rejected"]
    event = AuditEvent.query.filter_by(action="ledger.write_off_rejected").one()
    assert event.data["decided_by"] == rejected_by
    assert not HumanTask.query.filter_by(process_key="write_off", state="ready").count()
    propose_write_off(loan, REASON, team["risk"])  # may be proposed again
    assert len(instances(loan)) == 2


def test_four_eyes(app, serviced, team):
    loan = serviced()
    propose_write_off(loan, REASON, team["plodh"])
    with pytest.raises(NotAllowed) as err:  # the proposer may not review
        review(loan, team["plodh"])
    assert err.value.code == "four_eyes"
    review(loan, team["boss"])
    with pytest.raises(NotAllowed) as err:  # the reviewer may not approve
        approve(loan, team["boss"])
    assert err.value.code == "four_eyes"
    approve(loan, team["gm"])
    row = WriteOff.query.one()
    assert (row.proposed_by_id, row.reviewed_by_id, row.approved_by_id) == (
        team["plodh"].id, team["boss"].id, team["gm"].id)


def test_who_may_propose_and_when(app, serviced, team):
    loan = serviced()
    for name in ("collector", "am", "dh", "gm"):
        with pytest.raises(NotAllowed):
            propose_write_off(loan, REASON, team[name])
    with pytest.raises(InvalidData) as err:
        propose_write_off(loan, "   ", team["plo"])
    assert list(err.value.field_errors) == ["reason"]
    propose_write_off(loan, REASON, team["lawyer"])
    with pytest.raises(Conflict) as err:  # one proposal at a time
        propose_write_off(fresh(loan), REASON, team["risk"])
    assert err.value.code == "write_off_pending"
    assert len(instances(loan)) == 1

    closed = serviced(loan_no="S-2")
    closed.status = "closed"
    db.session.commit()
    with pytest.raises(Conflict) as err:
        propose_write_off(closed, REASON, team["plo"])
    assert err.value.code == "case_closed"


def test_proposal_through_the_case_page(app, serviced, team):
    loan = serviced()
    client = app.test_client()
    url = f"/cases/{loan.loan_no}/write-off"
    login(client, "collector")
    assert client.post(url, data={"reason": REASON}).status_code == 403
    client.post("/logout")
    login(client, "plo")
    response = client.post(url, data={"reason": ""})
    assert response.status_code == 302 and response.location.endswith("#write-off")
    assert instances(loan) == []
    assert client.post(url, data={"reason": REASON}).status_code == 302
    assert len(instances(loan)) == 1
    again = client.post(url, data={"reason": REASON}, follow_redirects=True)
    assert "正在审批中" in again.get_data(as_text=True)
    assert len(instances(loan)) == 1


def test_legal_outcome_proposes_the_write_off(app, overdue, team):
    loan = overdue()
    collector, leader, lawyer = team["collector"], team["leader"], team["lawyer"]
    do(loan, "phone_collection", collector, number_called="13800138000", answered_by="nobody",
       collection_result="no_answer", next_step="propose_visit", visit_reason="no answer")
    do(loan, "approve_visit", leader, visit_decision="approve", visit_comment="go")
    do(loan, "visit_report", collector, visit_address="杭州市西湖区", visit_met="nobody",
       visit_findings="shop closed", visit_situation="wilful_default",
       visit_photos_note="photos")
    do(loan, "approve_litigation", leader, litigation_decision="approve",
       litigation_comment="sue")
    do(loan, "legal_filing", lawyer, court="杭州市西湖区人民法院", court_case_no="(2026)浙0106民初1号",
       filed_on="2026-05-12", filed_documents=["complaint"])
    do(loan, "legal_preservation", lawyer, accounts_frozen="none", assets_seized="none",
       preservation_ruling_no="(2026)浙0106财保1号", preservation_on="2026-05-14")
    do(loan, "legal_outcome", lawyer, legal_outcome_kind="write_off_proposal",
       recovered_amount="0", concluded_on="2026-05-20", legal_outcome_note=REASON)
    review_task = task(loan, "dept_review")
    assert review_task.context["reason"] == REASON
    assert review_task.context["proposed_by"] == "lawyer"
    assert [x.user_id for x in HumanTaskExclusion.query.filter_by(task_id=review_task.id)] == [
        lawyer.id]

    # Another such outcome while the proposal runs starts nothing more.
    result = record_legal_outcome({"loan_no": loan.loan_no, "completed_by": {
        "legal_outcome": "lawyer"}, "legal_outcome_kind": "write_off_proposal",
        "recovered_amount": "0"})
    assert result["write_off_instance_id"] is None
    assert len(instances(loan)) == 1
