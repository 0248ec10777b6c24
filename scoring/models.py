"""Tables of the propensity-to-pay score: the models (versions of weights), each overdue
loan's current score with its reasons, and the month's scores kept for the back-test."""
from extensions import db
from workflows.clock import now


class ScoringModel(db.Model):
    """A version of the model: a points scorecard (the documented defaults) or a logistic
    model fitted on the lender's own history; exactly one is active."""
    __tablename__ = "scoring_models"
    id = db.Column(db.Integer, primary_key=True)
    kind = db.Column(db.String(10), nullable=False)  # points | logistic
    weights = db.Column(db.JSON, nullable=False)
    fitted_on = db.Column(db.Date)
    cases = db.Column(db.Integer, nullable=False, default=0)  # history rows it was fitted on
    metrics = db.Column(db.JSON, nullable=False, default=dict)
    active = db.Column(db.Boolean, nullable=False, default=False, index=True)
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))


class LoanScore(db.Model):
    """An overdue loan's score now: probability to pay (0..1), the amount due, the expected
    recovery (score × amount due) and the top reasons."""
    __tablename__ = "loan_scores"
    __table_args__ = (db.Index("ix_loan_scores_expected", "expected_recovery", "loan_id"),)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), primary_key=True)
    model_id = db.Column(db.Integer, db.ForeignKey("scoring_models.id"), nullable=False)
    scored_on = db.Column(db.Date, nullable=False)
    score = db.Column(db.Numeric(6, 4), nullable=False)
    amount_due = db.Column(db.Numeric(18, 2), nullable=False)
    expected_recovery = db.Column(db.Numeric(18, 2), nullable=False)
    reasons = db.Column(db.JSON, nullable=False, default=list)


class MonthScore(db.Model):
    """The score each overdue loan had at the start of a month, kept to test next month how
    well the scores ranked the payments (the back-test)."""
    __tablename__ = "loan_month_scores"
    month = db.Column(db.Date, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), primary_key=True)
    model_id = db.Column(db.Integer, db.ForeignKey("scoring_models.id"), nullable=False)
    score = db.Column(db.Numeric(6, 4), nullable=False)
    amount_due = db.Column(db.Numeric(18, 2), nullable=False)
    expected_recovery = db.Column(db.Numeric(18, 2), nullable=False)
