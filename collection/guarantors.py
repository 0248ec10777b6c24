"""Lost contact → demand payment from the guarantor (DOMAIN.md §5.3 [002 E], [000 §五(7)]):
the service operations of bpmn/guarantor_demand.bpmn and the record of each demand."""
import datetime as dt
from decimal import Decimal

from sqlalchemy import func, select

from audit.operations import record
from cases.intake import BAD_CHARACTERS, bad_character
from cases.models import Guarantor, Loan
from collection.facts import actor_of, completed_step, loan_of, log_contact, overdue_amount
from extensions import db
from i18n import N_
from ledger.models import Repayment
from ledger.repayments import post_recovery
from workflows import clock
from workflows.clock import now
from workflows.errors import InvalidData
from workflows.models import HumanTask
from workflows.services import service
from workflows.tasks import BEFORE_COMPLETE


class GuarantorDemand(db.Model):
    """One written demand to a guarantor: the notice, the response and what was paid."""
    __tablename__ = "guarantor_demands"
    id = db.Column(db.Integer, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False, index=True)
    guarantor_id = db.Column(db.Integer, db.ForeignKey("guarantors.id"), nullable=False)
    instance_id = db.Column(db.Integer, db.ForeignKey("process_instances.id"))
    demanded_amount = db.Column(db.Numeric(18, 2), nullable=False)  # overdue when sent
    sent_on = db.Column(db.Date, nullable=False)
    channel = db.Column(db.String(20), nullable=False)
    receipt = db.Column(db.String(20), nullable=False)
    receipt_note = db.Column(db.String(200), nullable=False, default="")
    deadline_on = db.Column(db.Date, nullable=False)
    sent_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    response = db.Column(db.String(20))  # agreed | refused | no_response
    promised_amount = db.Column(db.Numeric(18, 2))
    promised_on = db.Column(db.Date)
    responded_at = db.Column(db.DateTime(timezone=True))
    paid_amount = db.Column(db.Numeric(18, 2))
    repayment_id = db.Column(db.Integer, db.ForeignKey("repayments.id"))
    result = db.Column(db.String(20))  # GUARANTOR_DEMAND_RESULTS
    guarantor = db.relationship("Guarantor")


# ---------------------------------------------------------------- the demand, step by step
# Task data names start with demand_ / guarantor_: the process runs as a call activity of
# collection and its data flows back into collection's, which has its own notice fields.

RESULTS = ("paid", "partly_paid", "refused", "no_response", "no_guarantor")
PAYMENT_SOURCE = "guarantor_payment"  # ledger.models.REPAYMENT_SOURCES
REF_PREFIX = "guarantor:"  # keeps the guarantor's transfer references apart from core banking's


def yuan(amount):
    return f"¥{Decimal(str(amount)):,.2f}"


TEMPLATE = "guarantor_demand"  # the default; the diagram's service task names it


def demand_values(guarantor, amount, as_of, deadline):
    return {"guarantor_name": guarantor.name, "amount": amount, "today": as_of,
            "deadline": deadline}


def notice_text(loan, guarantor, amount, as_of, deadline, template=TEMPLATE):
    """The written demand (催收函 to the guarantor) from the template in use, in Chinese and
    English."""
    from notices.operations import render
    values = demand_values(guarantor, amount, as_of, deadline)
    return "\n".join(render(template, loan, values, language)["body"]
                     for language in ("zh_CN", "en"))


def _demand(data):
    return db.session.get(GuarantorDemand, data["guarantor_demand_id"])


def _finish(demand, data, result, actor=None, **values):
    data["guarantor_demand_result"] = result
    if demand is not None:
        demand.result = result
    record("collection.guarantor_demand_result", actor=actor,
           case_id=demand.loan_id if demand else loan_of(data).id,
           data={"demand_id": demand.id if demand else None, "result": result, **values})
    return {"result": result}


@service("guarantor_demand_prepare")
def prepare(data, template=TEMPLATE):
    """The case's guarantors, the amount overdue now and each guarantor's notice text, which
    names the response deadline the diagram set (demand_deadline_on)."""
    loan = loan_of(data)
    today = clock.today()
    amount = overdue_amount(loan, today)
    deadline = dt.date.fromisoformat(str(data["demand_deadline_on"])[:10])
    guarantors = list(loan.guarantors)
    data["guarantor_count"] = len(guarantors)
    data["borrower_name"] = loan.borrower_name
    data["demand_amount"] = str(amount)
    data["demand_amount_text"] = yuan(amount)
    data["guarantor_list"] = "\n".join(
        f"{i}. {g.name}（{g.phone or '—'}；{g.address or '—'}）"
        for i, g in enumerate(guarantors, start=1))
    data["guarantor_notices"] = "\n\n".join(
        f"[{i}] " + notice_text(loan, g, amount, today, deadline, template)
        for i, g in enumerate(guarantors, start=1))
    return {"guarantors": len(guarantors), "amount": str(amount)}


@service("guarantor_demand_none")
def no_guarantor(data):
    """Nobody guaranteed the loan: nothing to demand."""
    return _finish(None, data, "no_guarantor")


@service("guarantor_demand_record_notice")
def record_notice(data, template=TEMPLATE):
    """The notice was sent: the demand row, the letter as sent (from the template the
    diagram names, with its version), a contact-log note and the audit event."""
    from notices.operations import letter_recipient, send
    loan, actor, task_id = completed_step(data, "send_demand_notice")
    guarantor = list(loan.guarantors)[int(data["demand_guarantor_no"]) - 1]
    demand = GuarantorDemand(
        loan_id=loan.id, guarantor_id=guarantor.id, instance_id=_instance_id(task_id),
        demanded_amount=Decimal(str(data["demand_amount"])),
        sent_on=dt.date.fromisoformat(str(data["demand_sent_on"])[:10]),
        channel=data["demand_channel"], receipt=data["demand_receipt"],
        receipt_note=data.get("demand_receipt_note") or "",
        deadline_on=dt.date.fromisoformat(str(data["demand_deadline_on"])[:10]),
        sent_by_id=getattr(actor, "id", None), created_at=clock.now())
    db.session.add(demand)
    db.session.flush()
    entry = log_contact(loan, actor, "note", task_id, address=guarantor.address, outcome="other",
                        answered_by=guarantor.name,
                        note=(f"保证人代偿催收函 / Demand to the guarantor {guarantor.name}: "
                              f"{yuan(demand.demanded_amount)}, sent {demand.sent_on} by "
                              f"{demand.channel}, receipt {demand.receipt}; reply by "
                              f"{demand.deadline_on}"))
    record("collection.guarantor_demand_sent", actor=actor, case_id=loan.id, task_id=task_id,
           data={"demand_id": demand.id, "guarantor_id": guarantor.id,
                 "guarantor": guarantor.name, "amount": str(demand.demanded_amount),
                 "sent_on": demand.sent_on.isoformat(), "channel": demand.channel,
                 "receipt": demand.receipt, "deadline_on": demand.deadline_on.isoformat(),
                 "entry_id": entry.id})
    notice = send(template, loan, demand_values(guarantor, demand.demanded_amount,
                                                demand.sent_on, demand.deadline_on),
                  letter_recipient(guarantor.name, guarantor.address), actor=actor,
                  instance_id=demand.instance_id, task_id=task_id)
    data["guarantor_demand_id"] = demand.id
    data["demand_guarantor_name"] = guarantor.name
    return {"demand_id": demand.id, "notice_id": notice.id,
            "version": notice.template_version.version}


@service("guarantor_demand_record_response")
def record_response(data):
    """The guarantor's answer: agrees (amount and date promised) or refuses."""
    demand = _demand(data)
    actor = actor_of(data, "record_guarantor_response")
    demand.response = data["demand_response"]
    demand.responded_at = clock.now()
    if demand.response == "agreed":
        demand.promised_amount = Decimal(str(data["demand_promised_amount"]))
        demand.promised_on = dt.date.fromisoformat(str(data["demand_promised_on"])[:10])
    record("collection.guarantor_responded", actor=actor, case_id=demand.loan_id,
           data={"demand_id": demand.id, "response": demand.response,
                 "promised_amount": data.get("demand_promised_amount"),
                 "promised_on": data.get("demand_promised_on"),
                 "note": data.get("demand_response_note")})
    if demand.response == "refused":
        return _finish(demand, data, "refused", actor)
    return {"response": demand.response}


@service("guarantor_demand_no_response")
def record_no_response(data):
    """The deadline passed without an answer, or without the promised payment."""
    demand = _demand(data)
    if demand.response is None:
        demand.response, demand.responded_at = "no_response", clock.now()
    return _finish(demand, data, "no_response", reason=data.get("demand_response") or "none")


@service("guarantor_demand_post_payment")
def post_payment(data):
    """The guarantor's payment, posted through the ledger as a repayment of source
    guarantor_payment (balances, allocation and `ledger verify` as for any repayment)."""
    demand = _demand(data)
    loan = loan_of(data)
    actor = actor_of(data, "record_guarantor_payment")
    amount = Decimal(str(data["guarantor_paid_amount"]))
    paid_on = dt.date.fromisoformat(str(data["guarantor_paid_on"])[:10])
    repayment = post_recovery(loan, amount, paid_on, PAYMENT_SOURCE,
                              REF_PREFIX + str(data["guarantor_payment_ref"]).strip(), actor)
    demand.paid_amount, demand.repayment_id = amount, repayment.id
    cleared = overdue_amount(loan) <= 0
    return _finish(demand, data, "paid" if cleared else "partly_paid", actor,
                   repayment_id=repayment.id, amount=str(amount))


def _instance_id(task_id):
    row = db.session.get(HumanTask, task_id) if task_id else None
    return row.instance_id if row else None


# ---------------------------------------------------------------- checks before completion

def check_demand_forms(row, values):
    """Field errors a form cannot express: the guarantor number exists, no date in the
    future, the payment fits the balance and its reference is new."""
    errors = {}
    if row.form_key == "guarantor_demand_notice":
        count = db.session.scalar(select(func.count(Guarantor.id))
                                  .where(Guarantor.loan_id == row.case_id))
        number = values.get("demand_guarantor_no")
        if number is not None and not 1 <= int(number) <= count:
            errors["demand_guarantor_no"] = [N_("No guarantor has this number.")]
        if _future(values.get("demand_sent_on")):
            errors["demand_sent_on"] = [N_("This date cannot be in the future.")]
    elif row.form_key == "guarantor_payment":
        amount = values.get("guarantor_paid_amount")
        loan = db.session.get(Loan, row.case_id)
        if amount is not None and Decimal(str(amount)) > loan.outstanding:
            errors["guarantor_paid_amount"] = [N_("Exceeds the outstanding balance.")]
        if _future(values.get("guarantor_paid_on")):
            errors["guarantor_paid_on"] = [N_("This date cannot be in the future.")]
        ref = str(values.get("guarantor_payment_ref") or "").strip()
        if bad_character(ref, identifier=True) is not None:
            errors["guarantor_payment_ref"] = [BAD_CHARACTERS]
        elif ref and db.session.scalar(select(Repayment.id).where(
                Repayment.external_ref == REF_PREFIX + ref)) is not None:
            errors["guarantor_payment_ref"] = [N_("This payment was already recorded.")]
    if errors:
        raise InvalidData("the form has errors", code="invalid", field_errors=errors)


def _future(value):
    return bool(value) and dt.date.fromisoformat(str(value)[:10]) > clock.today()


BEFORE_COMPLETE.append(check_demand_forms)
