"""Collection after litigation (DOMAIN.md §5.3 [002 F]): the service operations of
bpmn/collection.bpmn that record the legal outcome, post what was recovered, follow up monthly
while a balance is left, and propose a write-off; and the check that the recovered amount
stays within the balance."""
import datetime as dt
from decimal import Decimal

from audit.operations import record
from cases.models import Loan
from collection.facts import completed_step, decimal_or_none, loan_of, log_contact, settlement
from extensions import db
from i18n import N_
from ledger.repayments import post_recovery
from workflows import clock
from workflows.errors import InvalidData
from workflows.services import service
from workflows.tasks import BEFORE_COMPLETE


@service("collection_record_legal_outcome")
def record_legal_outcome(data):
    """Litigation concluded: the outcome in the contact log, the money recovered posted, a
    write-off proposed if the lawyer says so. Collection ends only if nothing overdue is left
    or the loan is written off (`overdue_cleared`, `written_off` for the diagram) [002 F]."""
    loan, actor, task_id = completed_step(data, "legal_outcome")
    outcome = data.get("legal_outcome_kind") or ""
    note = (f"诉讼结果 / Litigation outcome: {outcome}; court {data.get('court')}, case "
            f"{data.get('court_case_no')}; ruling {data.get('preservation_ruling_no')}; "
            f"recovered {data.get('recovered_amount')}"
            + (f"\n{data['legal_outcome_note']}" if data.get("legal_outcome_note") else ""))
    entry = log_contact(loan, actor, "note", task_id, outcome="other", note=note)
    record("collection.legal_concluded", actor=actor, case_id=loan.id, task_id=task_id,
           data={"entry_id": entry.id, "outcome": outcome, "court": data.get("court"),
                 "case_no": data.get("court_case_no"),
                 "recovered_amount": data.get("recovered_amount")})
    recovered = decimal_or_none(data.get("recovered_amount")) or Decimal("0")
    repayment = None
    if recovered > 0:
        # The recovered money is posted through the ledger like any repayment, once.
        concluded = dt.date.fromisoformat(data.get("concluded_on") or clock.today()
                                          .isoformat())
        repayment = post_recovery(loan, recovered, concluded,
                                  RECOVERY_SOURCES.get(outcome, "legal_recovery"),
                                  f"legal-outcome:{task_id}", actor)
    write_off = None
    if outcome == "write_off_proposal":
        # The lawyer's proposal goes to approval (ledger.writeoff), unless the loan cannot be
        # proposed now: already written off, a proposal running, or nothing left after recovery.
        from ledger.writeoff import DEFAULT_LEGAL_REASON, refusal, start_write_off
        if refusal(loan) is None:
            write_off = start_write_off(loan, data.get("legal_outcome_note")
                                        or DEFAULT_LEGAL_REASON, actor).id
    data.update(settlement(loan))
    return {"outcome": outcome, "repayment_id": repayment.id if repayment else None,
            "write_off_instance_id": write_off, "overdue_cleared": data["overdue_cleared"]}


@service("collection_recovery_refresh")
def recovery_refresh(data):
    """A month after the last recovery follow-up: cleared or written off since?"""
    facts = settlement(loan_of(data))
    data.update(facts)
    return {k: facts[k] for k in ("overdue_cleared", "written_off")}


@service("collection_log_recovery")
def log_recovery(data):
    """The monthly recovery follow-up in the contact log; a write-off proposal, when asked
    for, goes to approval (ledger.writeoff) unless the loan cannot be proposed now."""
    from ledger.writeoff import refusal, start_write_off
    loan, actor, task_id = completed_step(data, "recovery_followup")
    status, action = data.get("recovery_status") or "", data.get("recovery_action") or "continue"
    note = f"回收跟进 / Recovery follow-up: {status}\n{data.get('recovery_note') or ''}"
    entry = log_contact(loan, actor, "note", task_id, outcome="other", note=note)
    write_off, refused = None, None
    if action == "propose_write_off":
        problem = refusal(loan)
        if problem is None:
            write_off = start_write_off(loan, data.get("write_off_reason") or "", actor).id
        else:
            refused = problem.code
    record("collection.recovery_followed_up", actor=actor, case_id=loan.id, task_id=task_id,
           data={"entry_id": entry.id, "status": status, "action": action,
                 "write_off_instance_id": write_off, "write_off_refused": refused})
    return {"entry_id": entry.id, "write_off_instance_id": write_off,
            "write_off_refused": refused}


# Which repayment source a legal outcome's recovered money is posted under.
RECOVERY_SOURCES = {"liquidation": "liquidation", "guarantor_payment": "guarantor_payment",
                    "settlement": "settlement"}


def check_recovered_amount(row, values):
    """Before the legal outcome is accepted: the recovered amount cannot exceed the balance."""
    if row.form_key != "collection_legal_outcome":
        return
    recovered = decimal_or_none(values.get("recovered_amount"))
    loan = db.session.get(Loan, row.case_id)
    if recovered is not None and recovered > loan.outstanding:
        raise InvalidData("the recovered amount exceeds the outstanding balance",
                          code="invalid", field_errors={
                              "recovered_amount": [N_("Exceeds the outstanding balance.")]})


BEFORE_COMPLETE.append(check_recovered_amount)
