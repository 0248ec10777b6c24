"""The loan's money: its schedule of installments, what is charged on them, the repayments
posted against them and how each repayment was allocated.

The amounts on an installment (`*_due`, `*_paid`) are running totals of immutable rows:
`*_due` is the sum of its charges of that kind, `*_paid` the sum of its allocations of that
part (reversals are negative allocations). `ledger verify` checks exactly that.
"""
from flask_babel import lazy_gettext as _l

from extensions import db
from workflows.clock import now

PARTS = ("penalty", "interest", "principal")  # the allocation order within an installment
CHARGE_SOURCES = ("schedule", "penalty", "extension", "recall")
REPAYMENT_SOURCES = {"core_banking": _l("Core banking"), "staff": _l("Entered by staff"),
                     "liquidation": _l("Assets liquidated"),
                     "guarantor_payment": _l("Guarantor paid"),
                     "settlement": _l("Settlement"),
                     "legal_recovery": _l("Recovered by legal action")}


class Installment(db.Model):
    """One due date of the schedule; a term loan has a single one at maturity."""
    __tablename__ = "installments"
    __table_args__ = (db.UniqueConstraint("loan_id", "seq"),
                      db.Index("ix_installments_unpaid_due", "loan_id", "paid_off_on", "due_on"),
                      # The book's overdue installments as a range (the daily run; 0014).
                      db.Index("ix_installments_unpaid_by_due", "due_on", "loan_id",
                               postgresql_where=db.text("paid_off_on IS NULL"),
                               sqlite_where=db.text("paid_off_on IS NULL")))
    id = db.Column(db.Integer, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False)
    seq = db.Column(db.Integer, nullable=False)
    due_on = db.Column(db.Date, nullable=False)
    principal_due = db.Column(db.Numeric(18, 2), nullable=False)
    interest_due = db.Column(db.Numeric(18, 2), nullable=False, default=0)
    penalty_due = db.Column(db.Numeric(18, 2), nullable=False, default=0)
    principal_paid = db.Column(db.Numeric(18, 2), nullable=False, default=0)
    interest_paid = db.Column(db.Numeric(18, 2), nullable=False, default=0)
    penalty_paid = db.Column(db.Numeric(18, 2), nullable=False, default=0)
    paid_off_on = db.Column(db.Date)
    loan = db.relationship("Loan", back_populates="installments")

    @property
    def outstanding(self):
        return (self.principal_due + self.interest_due + self.penalty_due
                - self.principal_paid - self.interest_paid - self.penalty_paid)


class Repayment(db.Model):
    __tablename__ = "repayments"
    id = db.Column(db.Integer, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False, index=True)
    # Core banking's reference; a repayment is posted once per reference.
    external_ref = db.Column(db.String(80), nullable=False, unique=True)
    amount = db.Column(db.Numeric(18, 2), nullable=False)
    paid_at = db.Column(db.DateTime(timezone=True), nullable=False)
    principal = db.Column(db.Numeric(18, 2), nullable=False, default=0)
    interest = db.Column(db.Numeric(18, 2), nullable=False, default=0)
    penalty = db.Column(db.Numeric(18, 2), nullable=False, default=0)
    # The allocation per installment as posted (a copy of its Allocation rows, for the API).
    allocation = db.Column(db.JSON, nullable=False, default=list)
    posted_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    # Where the money came from (REPAYMENT_SOURCES): core banking, staff, or a legal recovery.
    source = db.Column(db.String(20), nullable=False, default="core_banking",
                       server_default="core_banking")
    reversed_at = db.Column(db.DateTime(timezone=True))
    posted_by = db.relationship("User", foreign_keys=[posted_by_id])


class Charge(db.Model):
    """An amount charged on an installment; never changed. The schedule's principal and
    interest, penalty interest per accrual period, an extension's extra interest, the interest
    given up by an early recall (negative)."""
    __tablename__ = "ledger_charges"
    __table_args__ = (
        # Penalty accrues once per installment and day: a re-run of the daily run or a race
        # with a repayment posting the same accrual fails here instead of charging twice.
        db.Index("uq_ledger_charges_penalty_period", "installment_id", "period_end",
                 unique=True, sqlite_where=db.text("source = 'penalty'"),
                 postgresql_where=db.text("source = 'penalty'")),
    )
    id = db.Column(db.Integer, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False, index=True)
    installment_id = db.Column(db.Integer, db.ForeignKey("installments.id"), nullable=False,
                               index=True)
    kind = db.Column(db.String(10), nullable=False)  # principal | interest | penalty
    source = db.Column(db.String(12), nullable=False)  # CHARGE_SOURCES
    amount = db.Column(db.Numeric(18, 2), nullable=False)
    # Penalty: the days accrued (inclusive), the base it ran on and the annual rate used.
    period_start = db.Column(db.Date)
    period_end = db.Column(db.Date)
    base = db.Column(db.Numeric(18, 2))
    rate = db.Column(db.Numeric(9, 6))
    note = db.Column(db.String(200), nullable=False, default="")
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)


class Allocation(db.Model):
    """The part of a repayment applied to one part (penalty, interest, principal) of one
    installment; never changed. A reversal adds the same rows negated, naming the reversal."""
    __tablename__ = "ledger_allocations"
    id = db.Column(db.Integer, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False, index=True)
    repayment_id = db.Column(db.Integer, db.ForeignKey("repayments.id"), nullable=False,
                             index=True)
    installment_id = db.Column(db.Integer, db.ForeignKey("installments.id"), nullable=False,
                               index=True)
    part = db.Column(db.String(10), nullable=False)  # PARTS
    amount = db.Column(db.Numeric(18, 2), nullable=False)
    reversal_id = db.Column(db.Integer, db.ForeignKey("repayment_reversals.id"))
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)


class Reversal(db.Model):
    """Taking a posted repayment back (e.g. the debit bounced): requested with a reason by one
    person, approved by another who neither requested nor posted it."""
    __tablename__ = "repayment_reversals"
    __table_args__ = (
        # At most one open or approved reversal per repayment.
        db.Index("uq_repayment_reversals_live", "repayment_id", unique=True,
                 sqlite_where=db.text("status != 'rejected'"),
                 postgresql_where=db.text("status != 'rejected'")),
    )
    id = db.Column(db.Integer, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False, index=True)
    repayment_id = db.Column(db.Integer, db.ForeignKey("repayments.id"), nullable=False)
    reason = db.Column(db.Text, nullable=False)
    status = db.Column(db.String(10), nullable=False, default="pending")  # pending|approved|rejected
    requested_by_id = db.Column(db.Integer, db.ForeignKey("users.id"), nullable=False)
    requested_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    decided_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    decided_at = db.Column(db.DateTime(timezone=True))
    decision_note = db.Column(db.Text, nullable=False, default="")
    repayment = db.relationship("Repayment")
    requested_by = db.relationship("User", foreign_keys=[requested_by_id])
    decided_by = db.relationship("User", foreign_keys=[decided_by_id])


class LegalRateCap(db.Model):
    """The legal ceiling on penalty interest from a date on: `multiple` × the one-year LPR
    (e.g. 4 × 3.00% = 12.00% a year), entered by an administrator."""
    __tablename__ = "legal_rate_caps"
    effective_on = db.Column(db.Date, primary_key=True)
    lpr_one_year = db.Column(db.Numeric(9, 6), nullable=False)
    multiple = db.Column(db.Numeric(6, 2), nullable=False, default=4)
    entered_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    entered_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)

    @property
    def annual_cap(self):
        return self.lpr_one_year * self.multiple


class Recall(db.Model):
    """An early recall (提前收回): every later installment fell due on the recall date."""
    __tablename__ = "loan_recalls"
    id = db.Column(db.Integer, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False, unique=True)
    recalled_on = db.Column(db.Date, nullable=False)
    reason = db.Column(db.Text, nullable=False, default="")
    decided_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    signal_id = db.Column(db.Integer, db.ForeignKey("risk_signals.id"))
    moved = db.Column(db.JSON, nullable=False, default=list)  # [{seq, old_due_on, ...}]
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)


class WriteOff(db.Model):
    """A loan's balance taken off the books (核销) after approval; the debt stays recoverable,
    so later recoveries are still posted as repayments."""
    __tablename__ = "loan_write_offs"
    id = db.Column(db.Integer, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False, unique=True)
    written_off_on = db.Column(db.Date, nullable=False)
    principal = db.Column(db.Numeric(18, 2), nullable=False)
    interest = db.Column(db.Numeric(18, 2), nullable=False)
    penalty = db.Column(db.Numeric(18, 2), nullable=False)
    reason = db.Column(db.Text, nullable=False, default="")
    proposed_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    reviewed_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    approved_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    instance_id = db.Column(db.Integer, db.ForeignKey("process_instances.id"))
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)

    @property
    def amount(self):
        return self.principal + self.interest + self.penalty
