"""Tables of the collateral and guarantor watch."""
from extensions import db
from workflows.clock import now

# The kind of asset sets how often it is revalued (CollateralPolicy per type).
ASSET_TYPES = ("real_estate", "vehicle", "equipment", "inventory", "deposit", "equity", "other")
VALUATION_METHODS = ("market", "income", "cost", "appraisal", "agreed")
VALUATION_SOURCES = ("intake", "revaluation", "staff")
WARNING_REASONS = ("registration_expiring", "insurance_expiring", "revaluation_due", "ltv_high")
GUARANTOR_CAPACITY = ("adequate", "weakened", "insufficient")
LICENCE_STATUSES = ("normal", "abnormal", "revoked", "cancelled")


class CollateralValuation(db.Model):
    """One valuation of one item: the history behind the loan-to-value ratio."""
    __tablename__ = "collateral_valuations"
    id = db.Column(db.Integer, primary_key=True)
    collateral_id = db.Column(db.Integer, db.ForeignKey("collateral.id"), nullable=False,
                              index=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False, index=True)
    value = db.Column(db.Numeric(18, 2), nullable=False)
    valued_on = db.Column(db.Date, nullable=False)
    method = db.Column(db.String(20), nullable=False, default="market")
    valuer = db.Column(db.String(120), nullable=False, default="")
    source = db.Column(db.String(20), nullable=False, default="staff")
    note = db.Column(db.Text, nullable=False, default="")
    instance_id = db.Column(db.Integer, db.ForeignKey("process_instances.id"))
    entered_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    reviewed_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    entered_by = db.relationship("User", foreign_keys=[entered_by_id])
    reviewed_by = db.relationship("User", foreign_keys=[reviewed_by_id])


class CollateralPolicy(db.Model):
    """Per asset type: months between revaluations, working days of warning before a
    registration or insurance expires, the loan-to-value ratio that raises a warning. A type
    without a row uses guarantees.watch.DEFAULT_POLICIES."""
    __tablename__ = "collateral_policies"
    asset_type = db.Column(db.String(20), primary_key=True)
    revaluation_months = db.Column(db.Integer, nullable=False)
    expiry_warning_days = db.Column(db.Integer, nullable=False)
    ltv_threshold = db.Column(db.Numeric(6, 4), nullable=False)
    updated_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    updated_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))


class CollateralWarning(db.Model):
    """A warning raised once: the unique key (loan, reason, key) keeps the daily watch from
    raising it twice (key: the item and the date or valuation it is about)."""
    __tablename__ = "collateral_warnings"
    __table_args__ = (db.UniqueConstraint("loan_id", "reason", "key"),)
    id = db.Column(db.Integer, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False, index=True)
    collateral_id = db.Column(db.Integer, db.ForeignKey("collateral.id"))
    reason = db.Column(db.String(30), nullable=False)  # WARNING_REASONS
    key = db.Column(db.String(80), nullable=False)
    raised_on = db.Column(db.Date, nullable=False)
    detail = db.Column(db.JSON, nullable=False, default=dict)
    signal_id = db.Column(db.Integer, db.ForeignKey("risk_signals.id"))
    instance_id = db.Column(db.Integer, db.ForeignKey("process_instances.id"))


class GuarantorCheck(db.Model):
    """One check of one guarantor's status, on an inspection or by staff on the case page."""
    __tablename__ = "guarantor_checks"
    id = db.Column(db.Integer, primary_key=True)
    guarantor_id = db.Column(db.Integer, db.ForeignKey("guarantors.id"), nullable=False,
                             index=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False, index=True)
    reachable = db.Column(db.Boolean, nullable=False)
    capacity = db.Column(db.String(20), nullable=False)  # GUARANTOR_CAPACITY
    capacity_note = db.Column(db.Text, nullable=False, default="")
    court_enforcement = db.Column(db.Boolean, nullable=False, default=False)
    enforcement_note = db.Column(db.Text, nullable=False, default="")
    licence_status = db.Column(db.String(20))  # LICENCE_STATUSES, companies only
    source = db.Column(db.String(20), nullable=False, default="staff")  # staff | inspection
    instance_id = db.Column(db.Integer, db.ForeignKey("process_instances.id"))
    task_id = db.Column(db.Integer, db.ForeignKey("human_tasks.id"))
    signal_id = db.Column(db.Integer, db.ForeignKey("risk_signals.id"))
    checked_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    checked_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    checked_by = db.relationship("User")
