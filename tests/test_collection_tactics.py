"""Issue 11 rule 12 inside collection (DOMAIN.md §5.3 [002 E]): from the phone task the
collector demands payment from the guarantor (lost contact) or proposes a repayment plan
(willing but unable); bpmn/collection.bpmn calls guarantor_demand and repayment_plan and
goes on, or ends, by what they return and the overdue amount read again."""
import datetime as dt
from decimal import Decimal

import pytest

from accounts.operations import create_user
from audit.models import AuditEvent
from cases.models import ContactLogEntry
from collection.guarantors import GuarantorDemand
from collection.plans import RepaymentPlan
from extensions import db
from ledger.models import Repayment
from ledger.verify import verify
from tests.conftest import PASSWORD
from tests.test_collection import (CALL, at, collection, db_loan, do, overdue,  # noqa: F401
                                   overdue_now, pay, ready, staff)
from tests.test_guarantor_demand import GUARANTORS
from tests.test_repayment_plan import PLAN
from tests.test_servicing import serviced  # noqa: F401 (fixture)
from workflows.errors import NotAllowed
from workflows.inbox import inbox_page
from workflows.timers import fire_due_timers


def notes(loan):
    return [e.note for e in ContactLogEntry.query.filter_by(loan_id=loan.id, kind="note")
            .order_by(ContactLogEntry.id)]


def test_rule_lost_contact_in_collection_demands_payment_from_the_guarantor(
        app, overdue, staff):
    loan = overdue(guarantors=GUARANTORS)  # 8 May 10:00, DPD 2: 101 035.75 overdue
    do(loan, "phone_collection", staff["collector"], **dict(
        CALL, answered_by="nobody", collection_result="switched_off",
        client_type="lost_contact", next_step="demand_guarantor"))
    # The guarantor demand runs inside collection: its task is in the collector's inbox,
    # under the collection case, and the call loop waits.
    assert ready(loan) == ["send_demand_notice"]
    rows, total = inbox_page(staff["collector"], "available")
    assert [row[0].bpmn_id for row in rows] == ["send_demand_notice"]
    assert rows[0][0].lane == "collector" and rows[0][1] == loan.loan_no
    assert "李强" in rows[0][0].context["guarantor_list"]
    do(loan, "send_demand_notice", staff["collector"], demand_guarantor_no=1,
       demand_sent_on="2026-05-08", demand_channel="registered_mail",
       demand_receipt="signed", demand_receipt_note="EMS 1234567890")
    do(loan, "record_guarantor_response", staff["collector"], demand_response="agreed",
       demand_promised_amount="101035.75", demand_promised_on="2026-05-11")

    # The guarantor pays what is overdue on the 11th: posted through the ledger inside the
    # call activity; it is noted like any repayment and collection ends.
    at(dt.date(2026, 5, 11), 15)
    owed = overdue_now(loan, accrue=True)
    do(loan, "record_guarantor_payment", staff["collector"], guarantor_paid_amount=str(owed),
       guarantor_paid_on="2026-05-11", guarantor_payment_ref="ICBC-20260511-001")
    repayment = Repayment.query.filter_by(loan_id=loan.id).one()
    assert (repayment.source, repayment.amount) == ("guarantor_payment", owed)
    assert GuarantorDemand.query.one().result == "paid"
    instance = collection(loan)
    assert instance.status == "completed" and instance.next_timer_at is None
    assert ready(loan) == []
    assert "overdue cleared, collection ends." in notes(loan)[-1]
    ended = AuditEvent.query.filter_by(action="collection.tactic_ended").one()
    assert ended.data["guarantor_demand_result"] == "paid" and ended.data["overdue_cleared"]
    assert overdue_now(loan) == Decimal("0.00") and db_loan(loan).dpd == 0
    assert not verify([loan.id])


def test_rule_guarantor_paying_in_part_sends_collection_back_to_phone_calls(
        app, overdue, staff):
    loan = overdue(guarantors=GUARANTORS)
    do(loan, "phone_collection", staff["collector"], **dict(
        CALL, answered_by="nobody", collection_result="no_answer",
        client_type="lost_contact", next_step="demand_guarantor"))
    do(loan, "send_demand_notice", staff["collector"], demand_guarantor_no=2,
       demand_sent_on="2026-05-08", demand_channel="in_person", demand_receipt="signed")
    do(loan, "record_guarantor_response", staff["collector"], demand_response="agreed",
       demand_promised_amount="50000", demand_promised_on="2026-05-08")
    do(loan, "record_guarantor_payment", staff["collector"], guarantor_paid_amount="50000.00",
       guarantor_paid_on="2026-05-08", guarantor_payment_ref="ABC-1")
    assert GuarantorDemand.query.one().result == "partly_paid"
    # Still overdue: noted as such, back to the call loop.
    assert "still overdue, collection goes on." in notes(loan)[-1]
    assert collection(loan).status == "running"
    assert ready(loan) == ["phone_collection"]
    assert Decimal(ready(loan, "phone_collection").context["overdue_amount"]) == \
        overdue_now(loan)
    assert not verify([loan.id])


def test_rule_willing_but_unable_borrower_in_collection_gets_a_repayment_plan(
        app, overdue, staff):
    both = create_user("both", PASSWORD, ["collector", "dept_head"])
    loan = overdue()  # 8 May: 101 035.75 overdue
    do(loan, "phone_collection", both, **dict(
        CALL, client_type="willing_unable", next_step="propose_plan",
        collection_note="shop burnt down; insurance pays in July"))
    assert ready(loan) == ["propose_plan"]
    do(loan, "propose_plan", both, **PLAN)
    # Approved by another person: the proposer may not, even holding the leader's role.
    with pytest.raises(NotAllowed):
        do(loan, "approve_plan", both, plan_decision="approve")
    do(loan, "approve_plan", staff["leader"], plan_decision="approve",
       plan_decision_comment="ok")
    plan = RepaymentPlan.query.one()
    assert plan.status == "active" and plan.approved_by_id == staff["leader"].id
    # While the plan is kept phone collection waits; the monthly notice goes on.
    assert ready(loan) == []

    at(dt.date(2026, 5, 19), 10)
    pay(loan, "40000.00", "P1", staff["admin"])  # noted by collection's event subprocess
    assert "still overdue, collection goes on." in notes(loan)[-1]
    at(dt.date(2026, 5, 21), 0, 5)
    fire_due_timers()  # the first plan date kept
    assert [i.status for i in db.session.get(RepaymentPlan, plan.id).instalments] == [
        "kept", "pending", "pending"]
    assert ready(loan) == []
    at(dt.date(2026, 6, 8), 10, 1)
    fire_due_timers()  # the monthly written notice, phone collection still waiting
    assert ready(loan) == ["written_notice"]

    # The second date is broken (nothing more paid): collection is back to phone calls.
    at(dt.date(2026, 6, 21), 9, 40)
    fire_due_timers()
    assert db.session.get(RepaymentPlan, plan.id).status == "broken"
    assert ready(loan) == ["phone_collection", "written_notice"]
    assert Decimal(ready(loan, "phone_collection").context["overdue_amount"]) > 0
    ended = AuditEvent.query.filter_by(action="collection.tactic_ended").one()
    assert ended.data["repayment_plan_result"] == "broken"
    assert not ended.data["overdue_cleared"]
    assert collection(loan).status == "running"
    assert not verify([loan.id])


def test_rule_a_repayment_clearing_the_overdue_during_a_plan_ends_collection_and_the_plan(
        app, overdue, staff):
    loan = overdue()
    do(loan, "phone_collection", staff["collector"], **dict(
        CALL, client_type="willing_unable", next_step="propose_plan"))
    do(loan, "propose_plan", staff["collector"], **PLAN)
    do(loan, "approve_plan", staff["leader"], plan_decision="approve", plan_decision_comment="ok")
    at(dt.date(2026, 5, 12), 10)
    pay(loan, str(overdue_now(loan, accrue=True)), "ALL", staff["admin"])
    instance = collection(loan)
    assert instance.status == "completed" and instance.next_timer_at is None
    assert ready(loan) == []
    plan = RepaymentPlan.query.one()
    assert plan.status == "completed" and plan.ended_at is not None
    assert not verify([loan.id])
