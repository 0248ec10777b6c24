"""Posting repayments (DOMAIN.md §3): allocation, messages to the case's processes.

Allocation rule: installments oldest first; within each, penalty, then interest, then
principal. A repayment is posted once per external reference; a repeat is refused (409) and
changes nothing. A payment larger than the outstanding balance is refused.
"""
import datetime as dt
from decimal import Decimal, InvalidOperation

from audit.operations import record
from cases.closure import start_closure
from cases.reminders import cancel_reminder
from cases.staging import restage_loan
from extensions import db
from i18n import N_
from ledger.models import Repayment
from workflows import clock
from workflows.errors import Conflict, InvalidData
from workflows.service import deliver_message

CENT = Decimal("0.01")
# Who may post a repayment: core banking's integration user (admin) and the back office.
REPAYMENT_POSTERS = ("admin", "back_office", "post_loan_officer")
BEIJING = dt.timezone(dt.timedelta(hours=8))


def _parse(payload):
    errors, values = {}, {}
    try:
        amount = Decimal(str(payload.get("amount", "")).strip())
        if not amount.is_finite() or amount <= 0 or amount != amount.quantize(CENT):
            raise InvalidOperation
        values["amount"] = amount
    except InvalidOperation:
        errors["amount"] = [N_("Must be a positive amount with at most two decimals.")]
    raw = str(payload.get("paid_at", "")).strip()
    try:
        paid_at = dt.datetime.fromisoformat(raw)
        if paid_at.tzinfo is None:  # a bare date or local time is Beijing time
            paid_at = paid_at.replace(tzinfo=BEIJING)
        values["paid_at"] = paid_at.astimezone(dt.timezone.utc)
    except ValueError:
        errors["paid_at"] = [N_("Must be a date or date-time in ISO 8601.")]
    ref = str(payload.get("external_ref", "")).strip()
    if not ref or len(ref) > 80:
        errors["external_ref"] = [N_("Required, at most 80 characters.")]
    values["external_ref"] = ref
    if errors:
        raise InvalidData("the repayment has errors", field_errors=errors, code="invalid")
    return values


def _allocate(loan, amount, paid_on):
    """Apply `amount` to the installments; returns the split and per-installment detail."""
    left = amount
    split = {"penalty": Decimal("0"), "interest": Decimal("0"), "principal": Decimal("0")}
    detail, paid_off = [], []
    for inst in loan.installments:
        if left <= 0:
            break
        if inst.outstanding <= 0:
            continue
        parts = {}
        for part in ("penalty", "interest", "principal"):
            due = getattr(inst, f"{part}_due") - getattr(inst, f"{part}_paid")
            take = min(due, left)
            if take > 0:
                setattr(inst, f"{part}_paid", getattr(inst, f"{part}_paid") + take)
                split[part] += take
                parts[part] = str(take)
                left -= take
        if inst.outstanding <= 0:
            inst.paid_off_on = paid_on
            paid_off.append(inst)
        detail.append({"seq": inst.seq, **parts})
    return split, detail, paid_off


def post_repayment(loan, payload, actor):
    """Post one repayment; commits. Raises Conflict for a duplicate or a closed case."""
    values = _parse(payload)
    existing = Repayment.query.filter_by(external_ref=values["external_ref"]).first()
    if existing is not None:
        raise Conflict(f"repayment {values['external_ref']} was already posted "
                       f"(amount {existing.amount})", code="duplicate_repayment")
    if loan.status in ("closing", "closed"):
        raise Conflict(f"loan {loan.loan_no} is fully repaid", code="case_closed")
    outstanding = loan.outstanding
    if values["amount"] > outstanding:
        raise InvalidData("the amount exceeds the outstanding balance", code="invalid",
                          field_errors={"amount": [N_("Exceeds the outstanding balance.")]})
    paid_on = values["paid_at"].astimezone(BEIJING).date()
    split, detail, paid_off = _allocate(loan, values["amount"], paid_on)
    repayment = Repayment(loan_id=loan.id, external_ref=values["external_ref"],
                          amount=values["amount"], paid_at=values["paid_at"],
                          principal=split["principal"], interest=split["interest"],
                          penalty=split["penalty"], allocation=detail,
                          posted_by_id=getattr(actor, "id", None), created_at=clock.now())
    db.session.add(repayment)
    db.session.flush()
    remaining = loan.outstanding
    record("repayment.posted", actor=actor, case_id=loan.id, data={
        "external_ref": repayment.external_ref, "amount": str(repayment.amount),
        "paid_at": repayment.paid_at.isoformat(), "principal": str(split["principal"]),
        "interest": str(split["interest"]), "penalty": str(split["penalty"]),
        "outstanding": str(remaining)})
    for inst in paid_off:
        cancel_reminder(loan, inst, "installment paid off", actor)
    restage_loan(loan, actor)
    today = clock.now().astimezone(BEIJING).date()
    overdue_left = any(i.outstanding > 0 and i.due_on < today for i in loan.installments)
    deliver_message(loan.id, "repayment", {
        "amount": str(repayment.amount), "outstanding": str(remaining),
        "overdue_cleared": not overdue_left, "fully_repaid": remaining <= 0}, actor)
    if remaining <= 0:
        start_closure(loan, actor)
    db.session.commit()
    return repayment
