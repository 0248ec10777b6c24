"""The case: one loan and what the post-loan work records about it."""
from flask_babel import lazy_gettext as _l

from extensions import db
from workflows.clock import now

STATUS_LABELS = {"handover": _l("Handover"), "servicing": _l("Servicing")}
RISK_GROUP_LABELS = {"high": _l("High"), "normal": _l("Normal"), "low": _l("Low")}
FREQUENCY_LABELS = {"monthly": _l("Monthly"), "bimonthly": _l("Every two months"),
                    "quarterly": _l("Quarterly")}


class Loan(db.Model):
    __tablename__ = "loans"
    id = db.Column(db.Integer, primary_key=True)
    loan_no = db.Column(db.String(40), unique=True, nullable=False)
    borrower_name = db.Column(db.String(200), nullable=False)
    principal = db.Column(db.Numeric(18, 2), nullable=False)
    interest_rate = db.Column(db.Numeric(9, 6), nullable=False)
    disbursed_on = db.Column(db.Date, nullable=False)
    maturity_on = db.Column(db.Date, nullable=False)
    account_manager_id = db.Column(db.Integer, db.ForeignKey("users.id"), nullable=False,
                                   index=True)
    status = db.Column(db.String(20), nullable=False, default="handover")
    # Set by the handover's registration step (DOMAIN.md §5.1 step 3).
    risk_group = db.Column(db.String(10))
    inspection_frequency = db.Column(db.String(20))
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    account_manager = db.relationship("User")
