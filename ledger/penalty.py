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
from decimal import Decimal

from sqlalchemy import exists, func, select, update

from cases.models import Loan, Product
from extensions import db
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
    ids = select(Installment.loan_id).join(Loan, Loan.id == Installment.loan_id) \
        .where(*overdue_filter(through))
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(Loan.id).where(Loan.id.in_(ids)).order_by(Loan.id)
                           .with_for_update())
    else:  # a write takes SQLite's database lock before anything is read
        db.session.execute(update(Loan).where(Loan.id.in_(ids)).values(id=Loan.id)
                           .execution_options(synchronize_session=False))


def accrue(through, loan_id=None):
    """Accrue penalty interest through `through` (a Beijing date) on every overdue installment,
    or those of one loan; the caller holds the loans' locks. Flushes; returns the charges."""
    last = (select(Charge.installment_id, func.max(Charge.period_end).label("end"))
            .where(Charge.source == "penalty").group_by(Charge.installment_id).subquery())
    query = (select(Installment, Loan.interest_rate, Product.penalty_markup,
                    Product.compound_interest, last.c.end)
             .join(Loan, Loan.id == Installment.loan_id)
             .outerjoin(Product, Product.code == Loan.product)
             .outerjoin(last, last.c.installment_id == Installment.id)
             .where(*overdue_filter(through)).order_by(Installment.id)
             .execution_options(populate_existing=True))
    if loan_id is not None:
        query = query.where(Installment.loan_id == loan_id)
    caps = legal_caps()
    charges = []
    for inst, contract_rate, markup, compound, last_end in db.session.execute(query):
        start = max(inst.due_on, last_end or inst.due_on) + ONE_DAY
        if start > through:
            continue
        base = inst.principal_due - inst.principal_paid
        if compound:
            base += inst.interest_due - inst.interest_paid
        if base <= 0:
            continue
        markup = DEFAULT_MARKUP if markup is None else markup
        for seg_start, seg_end, cap in _segments(start, through, caps):
            rate = penalty_rate(contract_rate, markup, cap)
            days = (seg_end - seg_start).days + 1
            amount = cents(base * rate * days / 365)
            if amount > 0:
                charges.append(charge(inst, "penalty", "penalty", amount, base=base, rate=rate,
                                      period_start=seg_start, period_end=seg_end))
    db.session.flush()
    return charges


def total(charges):
    return sum((c.amount for c in charges), start=ZERO)
