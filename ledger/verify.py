"""`ledger verify`: every invariant of the ledger, checked set-based over all loans (or some).

For every loan at all times:
- `due_matches_charges`: each installment's principal, interest and penalty due equal the sum
  of its charges of that kind;
- `paid_matches_allocations`: each part paid equals the sum of its allocations (reversals
  included, negative);
- `paid_within_due`: nothing paid is negative or more than is due;
- `repayment_allocated`: a repayment's allocations add up to its amount, per part too;
- `reversal_mirrors`: a reversed repayment's reversal rows add up to minus its amount, and
  only an approved reversal has them;
- `paid_off_flag`: an installment is marked paid off exactly when nothing of it is
  outstanding;
- `principal_scheduled`: the principal charged adds up to the loan's principal;
- `penalty_periods`: no two penalty accruals of an installment cover the same day;
- `closed_settled`: a loan in closure or closed owes nothing.
Amounts are compared to within half a cent (SQLite sums money as floating point).
"""
from dataclasses import dataclass

from sqlalchemy import and_, case, func, literal, literal_column, or_, select

from cases.models import Loan
from extensions import db
from ledger.models import PARTS, Allocation, Charge, Installment, Repayment, Reversal

TOLERANCE = 0.005
# The constants as SQL literals, not bound parameters: a float parameter made PostgreSQL
# compare every numeric as a double (a quarter of the installment pass).
TOL, NEG_TOL, ZERO = (literal_column(x) for x in (str(TOLERANCE), f"-{TOLERANCE}", "0"))


@dataclass(frozen=True, order=True)
class Break:
    loan_id: int
    loan_no: str
    code: str
    detail: str

    def as_dict(self):
        return {"loan_no": self.loan_no, "code": self.code, "detail": self.detail}


def _differs(a, b):
    return func.abs(func.coalesce(a, ZERO) - func.coalesce(b, ZERO)) > TOL


def _per_installment(model, column, parts_column):
    # No ELSE 0: a row adds to its own part's sum only (NULL when none; compared and shown
    # through coalesce) — on PostgreSQL a third of the numeric additions, half the time.
    sums = [func.sum(case((parts_column == part, column))).label(part) for part in PARTS]
    return select(model.installment_id, *sums).group_by(model.installment_id).subquery()


def _single(code, template, query):
    """A check of one invariant: its query selects (loan id, seq, a, b) of each break."""
    return query, lambda row: [(code, template.format(seq=row[1], a=row[2], b=row[3]))]


def _flag(condition):
    return case((condition, 1), else_=0)


def _installment_checks(loan_ids=None):
    """Every per-installment check in one pass over the installments (charges and allocations
    summed once, not once per part): a row per installment with a flag per check. Then the
    penalty periods (`loan_ids`: only those loans')."""
    charged = _per_installment(Charge, Charge.amount, Charge.kind)
    allocated = _per_installment(Allocation, Allocation.amount, Allocation.part)
    columns, checks = [], []
    for part in PARTS:
        due, paid = getattr(Installment, f"{part}_due"), getattr(Installment, f"{part}_paid")
        charges, allocations = (func.coalesce(c, ZERO) for c in (charged.c[part],
                                                               allocated.c[part]))
        checks += [("due_matches_charges",
                    f"installment {{seq}}: {part} due {{a}} ≠ charges {{b}}",
                    due, charges, _differs(due, charged.c[part])),
                   ("paid_matches_allocations",
                    f"installment {{seq}}: {part} paid {{a}} ≠ allocations {{b}}",
                    paid, allocations, _differs(paid, allocated.c[part])),
                   ("paid_within_due", f"installment {{seq}}: {part} paid {{a}} outside 0…{{b}}",
                    paid, due, or_(paid < NEG_TOL, paid - due > TOL))]
    outstanding = (Installment.principal_due + Installment.interest_due
                   + Installment.penalty_due - Installment.principal_paid
                   - Installment.interest_paid - Installment.penalty_paid)
    checks.append(("paid_off_flag", "installment {seq}: outstanding {a}, paid off on {b}",
                   outstanding, Installment.paid_off_on,
                   or_(and_(Installment.paid_off_on.is_(None), outstanding <= TOL),
                       and_(Installment.paid_off_on.is_not(None), outstanding > TOL))))
    for n, (_code, _template, a, b, condition) in enumerate(checks):
        columns += [a.label(f"a{n}"), b.label(f"b{n}"), _flag(condition).label(f"f{n}")]
    query = (select(Installment.loan_id, Installment.seq, *columns)
             .outerjoin(charged, charged.c.installment_id == Installment.id)
             .outerjoin(allocated, allocated.c.installment_id == Installment.id)
             .where(or_(*[condition for *_x, condition in checks])))

    def found(row):
        values = row._mapping
        return [(code, template.format(seq=row.seq, a=values[f"a{n}"], b=values[f"b{n}"]))
                for n, (code, template, *_x) in enumerate(checks) if values[f"f{n}"]]
    yield query, found
    # An installment's penalty accruals in the order of their last day (one per day: the unique
    # index uq_ledger_charges_penalty_period, read in its order, no sort): two overlap exactly
    # when one starts on or before the last day of the one before it. One pass, where pairing
    # every accrual with every later one grew with the square of a long overdue's days (13 s
    # a day for 6,000 installments a year overdue).
    window = {"partition_by": Charge.installment_id, "order_by": Charge.period_end}
    penalties = select(Charge.installment_id, Charge.id, Charge.period_start,
                       func.lag(Charge.id).over(**window).label("before_id"),
                       func.lag(Charge.period_end).over(**window).label("before_end")) \
        .where(Charge.source == "penalty")
    if loan_ids is not None:
        penalties = penalties.where(Charge.loan_id.in_(loan_ids))
    penalties = penalties.subquery()
    yield _single(
        "penalty_periods", "installment {seq}: penalty accruals {a} and {b} overlap",
        select(Installment.loan_id, Installment.seq, penalties.c.before_id, penalties.c.id)
        .join(penalties, penalties.c.installment_id == Installment.id)
        .where(penalties.c.before_end >= penalties.c.period_start))


def _repayment_checks():
    original = (select(Allocation.repayment_id,
                       func.sum(Allocation.amount).label("total"),
                       *[func.sum(case((Allocation.part == part, Allocation.amount), else_=0))
                         .label(part) for part in PARTS])
                .where(Allocation.reversal_id.is_(None)).group_by(Allocation.repayment_id)
                .subquery())
    yield _single(
        "repayment_allocated", "repayment {seq}: amount {a} ≠ allocations {b}",
        select(Repayment.loan_id, Repayment.external_ref, Repayment.amount, original.c.total)
        .outerjoin(original, original.c.repayment_id == Repayment.id)
        .where(or_(_differs(Repayment.amount, original.c.total),
                   *[_differs(getattr(Repayment, part), original.c[part])
                     for part in PARTS])))
    reversed_rows = (select(Allocation.repayment_id, func.sum(Allocation.amount).label("total"))
                     .where(Allocation.reversal_id.is_not(None))
                     .group_by(Allocation.repayment_id).subquery())
    approved = (select(Reversal.repayment_id).where(Reversal.status == "approved")
                .subquery())
    expected = case((approved.c.repayment_id.is_not(None), -Repayment.amount), else_=0)
    yield _single(
        "reversal_mirrors", "repayment {seq}: reversal rows {b}, expected {a}",
        select(Repayment.loan_id, Repayment.external_ref, expected, reversed_rows.c.total)
        .outerjoin(reversed_rows, reversed_rows.c.repayment_id == Repayment.id)
        .outerjoin(approved, approved.c.repayment_id == Repayment.id)
        .where(or_(_differs(expected, reversed_rows.c.total),
                   (approved.c.repayment_id.is_not(None))
                   != Repayment.reversed_at.is_not(None))))


def _loan_checks():
    principal = (select(Charge.loan_id, func.sum(Charge.amount).label("total"))
                 .where(Charge.kind == "principal").group_by(Charge.loan_id).subquery())
    yield _single(
        "principal_scheduled", "{seq}: principal {a} ≠ principal charged {b}",
        select(Loan.id, literal("loan"), Loan.principal, principal.c.total)
        .outerjoin(principal, principal.c.loan_id == Loan.id)
        .where(_differs(Loan.principal, principal.c.total)))
    # Summed for the loans in closure or closed only, not for the whole book.
    settled = select(Loan.id).where(Loan.status.in_(("closing", "closed")))
    balance = (select(Installment.loan_id, func.sum(
        Installment.principal_due + Installment.interest_due + Installment.penalty_due
        - Installment.principal_paid - Installment.interest_paid - Installment.penalty_paid)
        .label("total")).where(Installment.loan_id.in_(settled))
        .group_by(Installment.loan_id).subquery())
    yield _single(
        "closed_settled", "{seq}: status {a} with {b} outstanding",
        select(Loan.id, literal("loan"), Loan.status, balance.c.total)
        .join(balance, balance.c.loan_id == Loan.id)
        .where(Loan.status.in_(("closing", "closed")), balance.c.total > TOL))


def verify(loan_ids=None):
    """Every break of every invariant, as Break rows (empty: the ledger is sound)."""
    breaks = []
    for query, found in (*_installment_checks(loan_ids), *_repayment_checks(),
                         *_loan_checks()):
        if loan_ids is not None:
            query = query.where(query.selected_columns[0].in_(loan_ids))
        for row in db.session.execute(query):
            breaks += [(row[0], code, detail) for code, detail in found(row)]
    if not breaks:
        return []
    numbers = dict(db.session.execute(
        select(Loan.id, Loan.loan_no).where(Loan.id.in_({b[0] for b in breaks}))).all())
    return sorted(Break(loan_id, numbers.get(loan_id, "?"), code, detail)
                  for loan_id, code, detail in breaks)
