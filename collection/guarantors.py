"""Lost contact → demand payment from the guarantor (DOMAIN.md §5.3 [002 E], [000 §五(7)]):
the service operations of bpmn/guarantor_demand.bpmn and the record of each demand."""
from extensions import db
from workflows.clock import now


class GuarantorDemand(db.Model):
    """One written demand to a guarantor: the notice, the response and what was paid."""
    __tablename__ = "guarantor_demands"
    id = db.Column(db.Integer, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False, index=True)
    guarantor_id = db.Column(db.Integer, db.ForeignKey("guarantors.id"), nullable=False)
    instance_id = db.Column(db.Integer, db.ForeignKey("process_instances.id"))
    demanded_amount = db.Column(db.Numeric(18, 2), nullable=False)  # overdue when sent
    sent_on = db.Column(db.Date, nullable=False)
    channel = db.Column(db.String(20), nullable=False)
    receipt = db.Column(db.String(20), nullable=False)
    receipt_note = db.Column(db.String(200), nullable=False, default="")
    deadline_on = db.Column(db.Date, nullable=False)
    sent_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    response = db.Column(db.String(20))  # agreed | refused | no_response
    promised_amount = db.Column(db.Numeric(18, 2))
    promised_on = db.Column(db.Date)
    responded_at = db.Column(db.DateTime(timezone=True))
    paid_amount = db.Column(db.Numeric(18, 2))
    repayment_id = db.Column(db.Integer, db.ForeignKey("repayments.id"))
    result = db.Column(db.String(20))  # GUARANTOR_DEMAND_RESULTS
    guarantor = db.relationship("Guarantor")
