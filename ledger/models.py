"""The loan's money: its schedule of installments and the repayments posted against it."""
from extensions import db
from workflows.clock import now


class Installment(db.Model):
    """One due date of the schedule; a term loan has a single one at maturity."""
    __tablename__ = "installments"
    __table_args__ = (db.UniqueConstraint("loan_id", "seq"),
                      db.Index("ix_installments_unpaid_due", "loan_id", "paid_off_on", "due_on"))
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
    allocation = db.Column(db.JSON, nullable=False, default=list)  # per installment
    posted_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
