"""Issue 11 rule 12 (first half), DOMAIN.md §5.3 [002 E] [000 §五(7)]: a borrower who lost
contact → the guarantor is demanded to pay (bpmn/guarantor_demand.bpmn, called from
collection); the guarantor's payment goes through the ledger."""
import datetime as dt
from decimal import Decimal

import pytest

from audit.models import AuditEvent
from calendars.workdays import add_working_days
from cases.models import ContactLogEntry
from collection.guarantors import GuarantorDemand
from extensions import db
from ledger.models import Repayment
from ledger.verify import verify
from tests.test_collection import at, db_loan, overdue, overdue_now, staff  # noqa: F401  (fixtures)
from tests.test_servicing import serviced  # noqa: F401  (fixture)
from workflows.engine import load_state
from workflows.errors import InvalidData
from workflows.models import HumanTask, ProcessInstance
from workflows.service import start_process
from workflows.tasks import complete_task
from workflows.timers import fire_due_timers

GUARANTORS = [{"kind": "person", "name": "李强", "id_number": "11010519491231002X",
               "phone": "13900139000", "address": "杭州市上城区解放路1号"},
              {"kind": "company", "name": "杭州信达担保有限公司", "phone": "0571-88000000"}]


def start_demand(loan):
    """Start the process as collection's call activity does: with collection's data."""
    instance = start_process("guarantor_demand", case_id=loan.id, data={
        "loan_no": loan.loan_no, "dpd": loan.dpd, "stage": loan.stage,
        "overdue_amount": "0.00"})
    db.session.commit()
    return instance


def ready(loan, bpmn_id):
    return HumanTask.query.filter_by(case_id=loan.id, process_key="guarantor_demand",
                                     bpmn_id=bpmn_id, state="ready").one()


def result_of(instance):
    instance = db.session.get(ProcessInstance, instance.id)
    workflow = load_state(instance.definition, instance.state_json)
    return instance.status, workflow.data.get("guarantor_demand_result")


def send_notice(loan, user, number=1):
    complete_task(ready(loan, "send_demand_notice").id, user, data={
        "demand_guarantor_no": number, "demand_sent_on": "2026-05-08",
        "demand_channel": "registered_mail", "demand_receipt": "signed",
        "demand_receipt_note": "EMS 1234567890"})


def test_rule_lost_contact_demands_payment_from_the_guarantor(app, overdue, staff):
    loan = overdue(guarantors=GUARANTORS)  # 8 May: 101 035.75 overdue
    instance = start_demand(loan)
    task = ready(loan, "send_demand_notice")
    assert task.lane == "collector" and task.form_key == "guarantor_demand_notice"
    deadline = add_working_days(dt.date(2026, 5, 8), 10).isoformat()
    assert task.context["demand_deadline_on"] == deadline
    assert task.context["demand_amount_text"] == "¥101,035.75"
    notices = task.context["guarantor_notices"]
    assert "[1] 致保证人李强" in notices and "[2] 致保证人杭州信达担保有限公司" in notices
    # The notice writes the deadline as a Chinese reader expects it (from the template library).
    day = dt.date.fromisoformat(deadline)
    assert loan.loan_no in notices and "¥101,035.75" in notices
    assert f"{day.year}年{day.month}月{day.day}日" in notices
    assert "1. 李强" in task.context["guarantor_list"]

    # A guarantor the case does not have, or a notice dated tomorrow, is a field error.
    with pytest.raises(InvalidData) as err:
        send_notice(loan, staff["collector"], number=3)
    assert "demand_guarantor_no" in err.value.field_errors
    send_notice(loan, staff["collector"])
    demand = GuarantorDemand.query.one()
    assert (demand.guarantor.name, demand.demanded_amount, demand.channel, demand.receipt,
            demand.deadline_on.isoformat()) == (
        "李强", Decimal("101035.75"), "registered_mail", "signed", deadline)
    assert demand.instance_id == instance.id and demand.sent_by_id == staff["collector"].id
    note = ContactLogEntry.query.filter_by(loan_id=loan.id, answered_by="李强").one()
    assert "Demand to the guarantor" in note.note

    response = ready(loan, "record_guarantor_response")
    assert response.context["demand_guarantor_name"] == "李强"
    complete_task(response.id, staff["collector"], data={
        "demand_response": "agreed", "demand_promised_amount": "101035.75",
        "demand_promised_on": "2026-05-11"})
    assert (demand.response, demand.promised_amount) == ("agreed", Decimal("101035.75"))

    at(dt.date(2026, 5, 11), 15)
    payment = ready(loan, "record_guarantor_payment")
    with pytest.raises(InvalidData) as err:  # more than the loan's whole balance
        complete_task(payment.id, staff["collector"], data={
            "guarantor_paid_amount": "999999.00", "guarantor_paid_on": "2026-05-11",
            "guarantor_payment_ref": "ICBC-20260511-001"})
    assert "guarantor_paid_amount" in err.value.field_errors
    # Paid on the 11th: three more days of penalty, so the guarantor pays what is due now.
    owed = overdue_now(loan, accrue=True)
    assert owed > Decimal("101035.75")
    complete_task(payment.id, staff["collector"], data={
        "guarantor_paid_amount": str(owed), "guarantor_paid_on": "2026-05-11",
        "guarantor_payment_ref": "ICBC-20260511-001"})

    repayment = Repayment.query.filter_by(loan_id=loan.id).one()
    assert (repayment.source, repayment.external_ref, repayment.amount) == (
        "guarantor_payment", "guarantor:ICBC-20260511-001", owed)
    assert repayment.posted_by_id == staff["collector"].id
    demand = db.session.get(GuarantorDemand, demand.id)
    assert (demand.paid_amount, demand.repayment_id, demand.result) == (
        owed, repayment.id, "paid")
    assert result_of(instance) == ("completed", "paid")
    assert db_loan(loan).dpd == 0
    assert not verify([loan.id])
    actions = [e.action for e in AuditEvent.query.filter(
        AuditEvent.action.like("collection.guarantor%")).order_by(AuditEvent.id)]
    assert actions == ["collection.guarantor_demand_sent", "collection.guarantor_responded",
                       "collection.guarantor_demand_result"]


def test_rule_a_case_without_a_guarantor_ends_the_demand_at_once(app, overdue, staff):
    loan = overdue()
    instance = start_demand(loan)
    assert result_of(instance) == ("completed", "no_guarantor")
    assert not HumanTask.query.filter_by(process_key="guarantor_demand").count()
    assert GuarantorDemand.query.count() == 0


def test_no_reply_by_the_deadline_and_a_refusal(app, overdue, staff):
    loan = overdue(guarantors=GUARANTORS)
    instance = start_demand(loan)
    send_notice(loan, staff["collector"], number=2)
    deadline = add_working_days(dt.date(2026, 5, 8), 10)
    at(deadline, 17, 59)
    fire_due_timers()
    assert ready(loan, "record_guarantor_response")
    at(deadline, 18, 1)
    fire_due_timers()
    assert result_of(instance) == ("completed", "no_response")
    assert GuarantorDemand.query.one().response == "no_response"

    second = start_demand(loan)
    send_notice(loan, staff["collector"])
    complete_task(ready(loan, "record_guarantor_response").id, staff["collector"],
                  data={"demand_response": "refused"})
    assert result_of(second) == ("completed", "refused")
    assert Repayment.query.count() == 0


def test_a_partial_payment_by_the_guarantor(app, overdue, staff):
    loan = overdue(guarantors=GUARANTORS)
    instance = start_demand(loan)
    send_notice(loan, staff["collector"])
    complete_task(ready(loan, "record_guarantor_response").id, staff["collector"], data={
        "demand_response": "agreed", "demand_promised_amount": "50000.00",
        "demand_promised_on": "2026-05-08"})
    complete_task(ready(loan, "record_guarantor_payment").id, staff["collector"], data={
        "guarantor_paid_amount": "50000.00", "guarantor_paid_on": "2026-05-08",
        "guarantor_payment_ref": "ABC-1"})
    assert result_of(instance) == ("completed", "partly_paid")
    assert db_loan(loan).outstanding == Decimal("303035.75") - Decimal("50000.00")
    assert not verify([loan.id])
    # The same bank reference cannot be recorded twice.
    again = start_demand(loan)
    send_notice(loan, staff["collector"])
    complete_task(ready(loan, "record_guarantor_response").id, staff["collector"], data={
        "demand_response": "agreed", "demand_promised_amount": "1000.00",
        "demand_promised_on": "2026-05-08"})
    with pytest.raises(InvalidData) as err:
        complete_task(ready(loan, "record_guarantor_payment").id, staff["collector"], data={
            "guarantor_paid_amount": "1000.00", "guarantor_paid_on": "2026-05-08",
            "guarantor_payment_ref": "ABC-1"})
    assert "guarantor_payment_ref" in err.value.field_errors
    # No payment by the working day after the promised date: no response.
    at(dt.date(2026, 5, 11), 18, 1)
    fire_due_timers()
    assert result_of(again) == ("completed", "no_response")
