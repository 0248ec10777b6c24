"""The two ways money moves on an installment — a charge or an allocation — and the loan lock
every money operation takes first.

Nothing else writes an installment's `*_due` or `*_paid`: each change is an immutable row
plus the running total, in the same transaction, under the loan's lock.
"""
from contextlib import contextmanager
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from cases.models import Loan
from extensions import db
from ledger.models import PARTS, Allocation, Charge, Installment
from workflows import clock
from workflows.errors import WorkflowError
from workflows.locks import lock_case

CENT = Decimal("0.01")
ZERO = Decimal("0")


def cents(value):
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def overdue_amount(loan_id, as_of):
    """What fell due before `as_of` and is not paid yet (principal, interest, penalty)."""
    installments = db.session.scalars(select(Installment).where(
        Installment.loan_id == loan_id, Installment.paid_off_on.is_(None),
        Installment.due_on < as_of)).all()
    return sum((i.outstanding for i in installments), start=ZERO)


def lock_loan(loan_id):
    """Take the loan's row lock (SELECT … FOR UPDATE on PostgreSQL, the write lock on SQLite)
    and return the loan with its installments read afresh under it."""
    lock_case(loan_id)
    return db.session.scalars(
        select(Loan).where(Loan.id == loan_id).options(selectinload(Loan.installments))
        .execution_options(populate_existing=True)).one()


@contextmanager
def one_transaction(conflict):
    """Commit what the block did, or roll all of it back on a refusal. A unique index that
    lost a race at this instant (IntegrityError) becomes the Conflict `conflict()` returns."""
    try:
        yield
        db.session.commit()
    except WorkflowError:
        db.session.rollback()
        raise
    except IntegrityError as exc:
        db.session.rollback()
        raise conflict() from exc


def charge(installment, kind, source, amount, **details):
    """Charge `amount` (negative to give back) of `kind` on an installment."""
    row = Charge(loan_id=installment.loan_id, installment_id=installment.id, kind=kind,
                 source=source, amount=amount, created_at=clock.now(), **details)
    db.session.add(row)
    setattr(installment, f"{kind}_due", getattr(installment, f"{kind}_due") + amount)
    _settle(installment, clock.today())
    return row


def allocate(loan, repayment, paid_on):
    """Apply the repayment to the loan's installments: oldest first, within each penalty,
    then interest, then principal. Returns {part: total} and the per-installment detail."""
    left = repayment.amount
    split = {part: ZERO for part in PARTS}
    detail = []
    for inst in loan.installments:
        if left <= 0:
            break
        parts = {}
        for part in PARTS:
            take = min(getattr(inst, f"{part}_due") - getattr(inst, f"{part}_paid"), left)
            if take > 0:
                _apply(inst, repayment, part, take)
                split[part] += take
                parts[part] = str(take)
                left -= take
        if parts:
            _settle(inst, paid_on)
            detail.append({"seq": inst.seq, **parts})
    return split, detail


def unallocate(repayment, reversal, on):
    """Negate every allocation of a repayment (a reversal); returns the installments hit."""
    rows = db.session.scalars(select(Allocation).where(
        Allocation.repayment_id == repayment.id, Allocation.reversal_id.is_(None))).all()
    touched = []
    for row in rows:
        inst = db.session.get(Installment, row.installment_id)
        _apply(inst, repayment, row.part, -row.amount, reversal_id=reversal.id)
        _settle(inst, on)
        if inst not in touched:
            touched.append(inst)
    return touched


def _apply(inst, repayment, part, amount, reversal_id=None):
    db.session.add(Allocation(loan_id=inst.loan_id, repayment_id=repayment.id,
                              installment_id=inst.id, part=part, amount=amount,
                              reversal_id=reversal_id, created_at=clock.now()))
    setattr(inst, f"{part}_paid", getattr(inst, f"{part}_paid") + amount)


def _settle(inst, on):
    """An installment is paid off exactly while nothing of it is outstanding."""
    if inst.outstanding <= 0 and inst.paid_off_on is None:
        inst.paid_off_on = on
    elif inst.outstanding > 0:
        inst.paid_off_on = None
