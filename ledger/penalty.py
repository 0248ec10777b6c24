"""Penalty interest (罚息) on overdue installments.

Each day an installment is past due (the same days its DPD counts), its overdue principal —
and, where the product says so, its overdue interest (compound interest) — bears penalty
interest at the product's penalty rate: the contract rate raised by the product's markup
(default +50%), never above the legal ceiling in force that day (a multiple of the one-year
LPR, entered by an administrator). Accruals are rows covering a period of days; an
installment's next accrual starts the day after its last one ends, so running the daily run
twice for a day, or a repayment posting the same day, charges nothing twice (a unique index
backs that up).
"""
import datetime as dt
from collections import namedtuple
from decimal import Decimal

from sqlalchemy import Date, Numeric, exists, false, func, select, update

from bulk import insert_rows, update_rows
from cases.models import Loan, Product
from extensions import db
from workflows import clock
from ledger.book import ZERO, cents, charge
from ledger.models import Charge, Installment, LegalRateCap, WriteOff

RATE_PLACES = Decimal("0.000001")
DEFAULT_MARKUP = Decimal("0.5")
ONE_DAY = dt.timedelta(days=1)


def legal_caps():
    """[(effective_on, annual cap)] in date order."""
    return [(row.effective_on, row.annual_cap) for row in
            LegalRateCap.query.order_by(LegalRateCap.effective_on)]


def cap_on(caps, day):
    current = None
    for effective_on, cap in caps:
        if effective_on > day:
            break
        current = cap
    return current


def penalty_rate(contract_rate, markup, cap):
    """The annual penalty rate: the contract rate × (1 + markup), capped."""
    rate = (Decimal(contract_rate) * (1 + Decimal(markup))).quantize(RATE_PLACES)
    return min(rate, cap.quantize(RATE_PLACES)) if cap is not None else rate


def _segments(start, end, caps):
    """Split [start, end] where a new legal ceiling takes effect: [(start, end, cap)]."""
    cuts = [day for day, _cap in caps if start < day <= end]
    bounds = [start] + cuts + [end + ONE_DAY]
    return [(a, b - ONE_DAY, cap_on(caps, a)) for a, b in zip(bounds, bounds[1:])]


def overdue_filter(through):
    """Installments that bear penalty interest through `through`: unpaid, due before it, of
    an open loan not written off."""
    return (Installment.paid_off_on.is_(None), Installment.due_on < through,
            Loan.status.not_in(("closing", "closed")),
            ~exists().where(WriteOff.loan_id == Loan.id))


def lock_overdue_loans(through):
    """Lock every loan that may accrue (in id order, so two runs never deadlock)."""
    if db.session.get_bind().dialect.name == "postgresql":
        ids = select(Installment.loan_id).join(Loan, Loan.id == Installment.loan_id) \
            .where(*overdue_filter(through))
        db.session.execute(select(Loan.id).where(Loan.id.in_(ids)).order_by(Loan.id)
                           .with_for_update())
    else:
        # A write takes SQLite's database lock (one for the whole file) before anything is
        # read; it need not touch a row, and rewriting every overdue loan cost a full pass.
        db.session.execute(update(Loan).where(false()).values(id=Loan.id)
                           .execution_options(synchronize_session=False))


def _due_query(through, installment=(Installment,)):
    """Each installment that may accrue through `through` (as `installment`: the entity or its
    columns), with its terms and last accrual."""
    # Per installment through the penalty-period index, not an aggregate of every accrual
    # ever made (a long-overdue book accrues a row per installment and day).
    last_end = (select(func.max(Charge.period_end))
                .where(Charge.installment_id == Installment.id, Charge.source == "penalty")
                .correlate(Installment).scalar_subquery().label("end"))
    return (select(*installment, Loan.interest_rate, Product.penalty_markup,
                   Product.compound_interest, last_end)
            .join(Loan, Loan.id == Installment.loan_id)
            .outerjoin(Product, Product.code == Loan.product)
            .where(*overdue_filter(through)).order_by(Installment.id))


def accruals(inst, contract_rate, markup, compound, last_end, through, caps):
    """The penalty accruals one installment is owed through `through`: [(period start, end,
    base, rate, amount)]. `inst` has the installment's columns (an Installment or a row); the
    one computation both `accrue` and `accrue_all` charge."""
    start = max(inst.due_on, last_end or inst.due_on) + ONE_DAY
    if start > through:
        return []
    base = inst.principal_due - inst.principal_paid
    if compound:
        base += inst.interest_due - inst.interest_paid
    if base <= 0:
        return []
    markup = DEFAULT_MARKUP if markup is None else markup
    owed = []
    for seg_start, seg_end, cap in _segments(start, through, caps):
        rate = penalty_rate(contract_rate, markup, cap)
        days = (seg_end - seg_start).days + 1
        amount = cents(base * rate * days / 365)
        if amount > 0:
            owed.append((seg_start, seg_end, base, rate, amount))
    return owed


def accrue(through, loan_id=None):
    """Accrue penalty interest through `through` (a Beijing date) on every overdue installment,
    or those of one loan; the caller holds the loans' locks. Flushes; returns the charges."""
    query = _due_query(through).execution_options(populate_existing=True)
    if loan_id is not None:
        query = query.where(Installment.loan_id == loan_id)
    caps = legal_caps()
    charges = []
    for inst, contract_rate, markup, compound, last_end in db.session.execute(query):
        for seg_start, seg_end, base, rate, amount in accruals(
                inst, contract_rate, markup, compound, last_end, through, caps):
            charges.append(charge(inst, "penalty", "penalty", amount, base=base, rate=rate,
                                  period_start=seg_start, period_end=seg_end))
    db.session.flush()
    return charges


Accrued = namedtuple("Accrued", "loan_id installment_id amount")


def accrue_all(through):
    """`accrue(through)` for the whole book in three statements instead of an ORM object per
    charge (the daily run): read the installments due, insert their charges in one batch,
    add them to the installments' penalty due in one executemany. The amounts come from the
    same `accruals`; an installment's paid-off flag ends as `charge` would leave it. The caller
    holds the loans' locks. Returns [Accrued]."""
    caps = legal_caps()
    query = _due_query(through, tuple(Installment.__table__.c))
    now, today = clock.now(), clock.today()
    rows, updates, accrued = [], [], []
    for row in db.session.execute(query):
        owed = accruals(row, row.interest_rate, row.penalty_markup, row.compound_interest,
                        row.end, through, caps)
        if not owed:
            continue
        added = sum((amount for *_x, amount in owed), start=ZERO)
        for seg_start, seg_end, base, rate, amount in owed:
            rows.append({"loan_id": row.loan_id, "installment_id": row.id, "kind": "penalty",
                         "source": "penalty", "amount": amount, "base": base, "rate": rate,
                         "period_start": seg_start, "period_end": seg_end, "note": "",
                         "created_at": now})
            accrued.append(Accrued(row.loan_id, row.id, amount))
        outstanding = (row.principal_due + row.interest_due + row.penalty_due + added
                       - row.principal_paid - row.interest_paid - row.penalty_paid)
        # `_settle` after the last charge: paid off (today) exactly when nothing is left.
        updates.append({"id": row.id, "added": added,
                        "paid_off": today if outstanding <= 0 else None})
    if rows:
        # Core, not the ORM's bulk insert: the rows are complete, nothing to track.
        insert_rows(Charge.__table__, rows)
        table = Installment.__table__
        update_rows(table, updates, {"added": Numeric(18, 2), "paid_off": Date},
                    lambda new: {"penalty_due": table.c.penalty_due + new.added,
                                 "paid_off_on": new.paid_off})
        # Installments already in the session were changed behind its back: read them again.
        for obj in list(db.session.identity_map.values()):
            if isinstance(obj, Installment):
                db.session.expire(obj)
    return accrued


def total(charges):
    return sum((c.amount for c in charges), start=ZERO)
