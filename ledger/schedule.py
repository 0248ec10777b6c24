"""Changes of the schedule: opening it at intake, an extension's new term and interest, an
early recall that makes every later installment due at once."""
import datetime as dt
from decimal import Decimal

from sqlalchemy import insert

from audit.operations import record
from extensions import db
from monitoring.reminders import cancel_reminder
from cases.staging import restage_loan
from ledger.book import ZERO, beijing_today, cents, charge, lock_loan
from ledger.models import Charge, Installment, Recall
from workflows import clock


def open_schedule(loan, items):
    """The installments of a new loan, due what its schedule says (`items`: the canonical
    intake's entries, due_on, principal, interest). Not flushed: charge_schedules writes the
    charges behind those amounts once the rows have ids."""
    loan.installments = [
        Installment(seq=seq, due_on=dt.date.fromisoformat(item["due_on"]),
                    principal_due=Decimal(item["principal"]),
                    interest_due=Decimal(item["interest"]), penalty_due=ZERO,
                    principal_paid=ZERO, interest_paid=ZERO, penalty_paid=ZERO)
        for seq, item in enumerate(items, start=1)]
    for inst in loan.installments:
        if inst.principal_due + inst.interest_due <= 0:  # as charge() settles it
            inst.paid_off_on = beijing_today()


def charge_schedules(loans):
    """The "schedule" charges of new loans' installments (flushed), one INSERT for all: the
    same rows charge() writes, one per non-zero principal and interest."""
    moment = clock.now()
    rows = [dict(loan_id=loan.id, installment_id=inst.id, kind=kind, source="schedule",
                 amount=amount, created_at=moment, note="")
            for loan in loans for inst in loan.installments
            for kind, amount in (("principal", inst.principal_due),
                                 ("interest", inst.interest_due)) if amount]
    if rows:
        db.session.execute(insert(Charge), rows)


def extension_interest(installment, old_due_on, new_due_on, rate):
    """Interest for the extended term: the installment's unpaid principal at the approved
    annual rate for the days added (actual/365, to the cent). Charged; returns the amount."""
    unpaid = installment.principal_due - installment.principal_paid
    days = (new_due_on - old_due_on).days
    amount = cents(unpaid * rate * days / 365) if unpaid > 0 and days > 0 else ZERO
    if amount:
        charge(installment, "interest", "extension", amount, base=unpaid, rate=rate,
               period_start=old_due_on + dt.timedelta(days=1), period_end=new_due_on,
               note=f"extension {old_due_on.isoformat()} -> {new_due_on.isoformat()}")
    return amount


def recall_loan(loan_id, on, reason, actor, signal_id=None):
    """Early recall (提前收回) under the loan's lock: the whole balance falls due on `on`,
    the later installments' reminders are cancelled and the loan restaged at once. Flushes;
    returns the Recall row, or None when the loan was recalled before."""
    loan = lock_loan(loan_id)
    if db.session.scalar(db.select(Recall.id).where(Recall.loan_id == loan.id)):
        return None
    row = _recall(loan, on, reason, actor, signal_id)
    for inst in loan.installments:
        if any(item["seq"] == inst.seq for item in row.moved):
            cancel_reminder(loan, inst, "loan recalled", actor)
    restage_loan(loan, actor)
    return row


def _recall(loan, on, reason, actor, signal_id):
    """Every installment due after `on` falls due on `on`; the interest of the days not yet
    run is given back pro rata (an installment's period runs from the previous due date, or
    disbursement)."""
    moved, previous = [], loan.disbursed_on
    for inst in loan.installments:
        start, due = previous, inst.due_on
        previous = inst.due_on
        if due <= on or inst.paid_off_on is not None:
            continue
        earned = cents(inst.interest_due * max((on - start).days, 0) / (due - start).days) \
            if (due - start).days > 0 else inst.interest_due
        given_back = earned - inst.interest_due
        # Never give back interest the borrower has already paid.
        given_back = max(given_back, inst.interest_paid - inst.interest_due)
        if given_back:
            charge(inst, "interest", "recall", given_back, period_start=on, period_end=due,
                   note=f"recalled on {on.isoformat()}")
        moved.append({"seq": inst.seq, "old_due_on": due.isoformat(),
                      "interest_given_back": str(-given_back)})
        inst.due_on = on
    row = Recall(loan_id=loan.id, recalled_on=on, reason=reason, moved=moved,
                 decided_by_id=getattr(actor, "id", None), signal_id=signal_id)
    db.session.add(row)
    db.session.flush()
    record("ledger.recalled", actor=actor, case_id=loan.id, data={
        "recalled_on": on.isoformat(), "reason": reason, "installments_moved": moved,
        "outstanding": str(loan.outstanding)})
    return row
