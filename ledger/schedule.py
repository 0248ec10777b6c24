"""Changes of the schedule: opening it at intake, an extension's new term and interest, an
early recall that makes every later installment due at once."""
import datetime as dt
from decimal import Decimal

from sqlalchemy import bindparam, insert, literal, select, union_all

from audit.operations import record
from extensions import db
from monitoring.reminders import cancel_reminder
from cases.staging import restage_loan
from ledger.book import ZERO, cents, charge, lock_loan
from ledger.models import Charge, Installment, Recall
from workflows import clock


# Zero as the database gives it back (two places): the single-loan path answers with the rows
# it wrote, not with rows read again.
NOTHING = Decimal("0.00")


def schedule_rows(items):
    """The installment rows of a new loan (without loan_id), due what its schedule says
    (`items`: the canonical intake's entries, due_on, principal, interest), settled as
    charge() settles them. The charges behind the amounts: charge_schedules."""
    rows = []
    for seq, item in enumerate(items, start=1):
        principal, interest = Decimal(item["principal"]), Decimal(item["interest"])
        rows.append({"seq": seq, "due_on": dt.date.fromisoformat(item["due_on"]),
                     "principal_due": principal, "interest_due": interest,
                     "penalty_due": NOTHING, "principal_paid": NOTHING,
                     "interest_paid": NOTHING, "penalty_paid": NOTHING,
                     "paid_off_on": clock.today() if principal + interest <= 0 else None})
    return rows


def open_schedule(loan, items):
    """schedule_rows as the loan's Installment objects (not flushed)."""
    loan.installments = [Installment(**row) for row in schedule_rows(items)]


def charge_schedules(loan_ids):
    """The "schedule" charges of new loans' installments (flushed), the same rows charge()
    writes — one per non-zero principal and interest, installment by installment — in one
    INSERT … SELECT from the installments."""
    if not _CHARGES:
        _CHARGES.append(_charges_statement())
    db.session.connection().execute(_CHARGES[0], {"loan_ids": list(loan_ids),
                                                  "moment": clock.now()})


_CHARGES = []  # the statement, built once: SQLAlchemy computes its cache key once


def _charges_statement():
    installments, charges = Installment.__table__, Charge.__table__
    parts = [select(installments.c.loan_id, installments.c.id.label("installment_id"),
                    literal(kind).label("kind"), installments.c[f"{kind}_due"].label("amount"),
                    literal(order).label("part"))
             .where(installments.c.loan_id.in_(bindparam("loan_ids", expanding=True)),
                    installments.c[f"{kind}_due"] != 0)
             for order, kind in enumerate(("principal", "interest"))]
    rows = union_all(*parts).subquery()
    return insert(charges).from_select(
        ["loan_id", "installment_id", "kind", "source", "amount", "note", "created_at"],
        select(rows.c.loan_id, rows.c.installment_id, rows.c.kind, literal("schedule"),
               rows.c.amount, literal(""),
               bindparam("moment", type_=charges.c.created_at.type))
        .order_by(rows.c.installment_id, rows.c.part))


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
