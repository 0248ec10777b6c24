"""Posting repayments (DOMAIN.md §3): allocation, messages to the case's processes.

Allocation rule: installments oldest first; within each, penalty, then interest, then
principal. A repayment is posted once per external reference; a repeat is refused (409) and
changes nothing. A payment larger than the outstanding balance is refused. Everything happens
under the loan's row lock, so simultaneous payments to one loan queue up and none is lost.
"""
import datetime as dt
from decimal import Decimal, InvalidOperation

from audit.operations import record
from cases.closure import start_closure
from cases.intake import BAD_CHARACTERS, bad_character
from monitoring.reminders import cancel_reminder
from cases.staging import restage_loan
from extensions import db
from i18n import N_
from ledger.book import CENT, allocate, lock_loan, one_transaction
from ledger.models import Repayment
from ledger.penalty import accrue
from workflows import clock
from workflows.clock import BEIJING
from workflows.errors import Conflict, InvalidData
from workflows.service import deliver_message

# Who may post a repayment: core banking's integration user (admin) and the back office.
REPAYMENT_POSTERS = ("admin", "back_office", "post_loan_officer")


# Bounds (issue 10): no amount above a trillion; a value date no earlier than a year before
# the loan was disbursed and no later than a year after today (core banking may announce a
# payment ahead of its value date, and the tests run on a frozen clock).
MAX_AMOUNT = Decimal(10) ** 12
PAID_AT_WINDOW = dt.timedelta(days=366)
EARLIEST_PAID_AT = dt.datetime(1990, 1, 1, tzinfo=dt.timezone.utc)


def _parse(payload, loan=None):
    errors, values = {}, {}
    raw = payload.get("amount", "")
    try:
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float, Decimal)):
            raise InvalidOperation
        text = str(raw).strip()
        if len(text) > 100:
            raise InvalidOperation
        amount = Decimal(text)
        if not amount.is_finite() or amount <= 0:
            raise InvalidOperation
        if amount > MAX_AMOUNT:
            errors["amount"] = [N_("Must be at most 1000000000000.00.")]
        elif amount != amount.quantize(CENT):
            raise InvalidOperation
        else:
            values["amount"] = amount
    except (InvalidOperation, ValueError):
        errors["amount"] = [N_("Must be a positive amount with at most two decimals.")]
    raw = str(payload.get("paid_at", "")).strip()
    try:
        if len(raw) > 64:
            raise ValueError
        paid_at = dt.datetime.fromisoformat(raw)
        if paid_at.tzinfo is None:  # a bare date or local time is Beijing time
            paid_at = paid_at.replace(tzinfo=BEIJING)
        paid_at = paid_at.astimezone(dt.timezone.utc)  # 9999-12-31T23:59:59-12:00 overflows
    except (ValueError, OverflowError):
        errors["paid_at"] = [N_("Must be a date or date-time in ISO 8601.")]
    else:
        earliest = EARLIEST_PAID_AT
        if loan is not None:
            earliest = max(earliest, dt.datetime.combine(loan.disbursed_on, dt.time(), BEIJING)
                           - PAID_AT_WINDOW)
        if paid_at < earliest:
            errors["paid_at"] = [N_("Must not be more than a year before the loan was "
                                    "disbursed.")]
        elif paid_at > clock.now() + PAID_AT_WINDOW:
            errors["paid_at"] = [N_("Must not be more than a year in the future.")]
        else:
            values["paid_at"] = paid_at
    ref = str(payload.get("external_ref", "")).strip()
    if not ref or len(ref) > 80:
        errors["external_ref"] = [N_("Required, at most 80 characters.")]
    elif bad_character(ref, identifier=True) is not None:
        errors["external_ref"] = [BAD_CHARACTERS]
    values["external_ref"] = ref
    if errors:
        raise InvalidData("the repayment has errors", field_errors=errors, code="invalid")
    return values


def post_repayment(loan, payload, actor, source="core_banking"):
    """Post one repayment from core banking or the staff form; commits. Raises Conflict for
    a duplicate reference or a closed case, InvalidData for bad values; then nothing changed."""
    values = _parse(payload, loan)
    # A race lost on the reference's unique index: the same one posted to another loan.
    with one_transaction(lambda: _duplicate(values["external_ref"])):
        repayment = record_repayment(loan.id, values, actor, source)
    return repayment


def post_recovery(loan, amount, on, source, external_ref, actor):
    """Money recovered by legal means (liquidation, guarantor payment, settlement), posted as
    a repayment with its source; flushes, the caller commits. Returns the repayment."""
    return record_repayment(loan.id, {
        "amount": amount, "external_ref": external_ref,
        "paid_at": dt.datetime.combine(on, dt.time(12), BEIJING).astimezone(dt.timezone.utc)},
        actor, source)


def _duplicate(external_ref, existing=None):
    amount = f" (amount {existing.amount})" if existing is not None else ""
    return Conflict(f"repayment {external_ref} was already posted{amount}",
                    code="duplicate_repayment")


def record_repayment(loan_id, values, actor, source):
    """Under the loan's lock: accrue penalty to the value date, check, allocate, restage, tell the
    case's processes, start closure at a zero balance. Flushes; the caller commits."""
    loan = lock_loan(loan_id)
    existing = Repayment.query.filter_by(external_ref=values["external_ref"]).first()
    if existing is not None:
        raise _duplicate(values["external_ref"], existing)
    if loan.status in ("closing", "closed"):
        raise Conflict(f"loan {loan.loan_no} is fully repaid", code="case_closed")
    today = clock.today()
    paid_on = values["paid_at"].astimezone(BEIJING).date()
    # Penalty interest runs until the money arrived (its value date), not until it was posted.
    accrue(min(paid_on, today), loan.id)
    if values["amount"] > loan.outstanding:
        raise InvalidData("the amount exceeds the outstanding balance", code="invalid",
                          field_errors={"amount": [N_("Exceeds the outstanding balance.")]})
    unpaid = [i for i in loan.installments if i.paid_off_on is None]
    repayment = Repayment(loan_id=loan.id, external_ref=values["external_ref"],
                          amount=values["amount"], paid_at=values["paid_at"], source=source,
                          posted_by_id=getattr(actor, "id", None), created_at=clock.now())
    db.session.add(repayment)
    db.session.flush()
    split, detail = allocate(loan, repayment, paid_on)
    repayment.principal, repayment.interest, repayment.penalty = (
        split["principal"], split["interest"], split["penalty"])
    repayment.allocation = detail
    db.session.flush()
    remaining = loan.outstanding
    record("repayment.posted", actor=actor, case_id=loan.id, data={
        "external_ref": repayment.external_ref, "amount": str(repayment.amount),
        "paid_at": repayment.paid_at.isoformat(), "source": source,
        "principal": str(split["principal"]), "interest": str(split["interest"]),
        "penalty": str(split["penalty"]), "outstanding": str(remaining)})
    for inst in unpaid:
        if inst.paid_off_on is not None:
            cancel_reminder(loan, inst, "installment paid off", actor)
    restage_loan(loan, actor)
    overdue_left = any(i.outstanding > 0 and i.due_on < today for i in loan.installments)
    deliver_message(loan.id, "repayment", {
        "amount": str(repayment.amount), "outstanding": str(remaining),
        "overdue_cleared": not overdue_left, "fully_repaid": remaining <= 0}, actor)
    if remaining <= 0:
        start_closure(loan, actor)
    db.session.flush()
    return repayment
