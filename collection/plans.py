"""Willing but unable → a repayment plan (DOMAIN.md §5.3 [002 E]): the service operations of
bpmn/repayment_plan.bpmn, the approved plan and its tracking."""
from extensions import db
from workflows.clock import now


class RepaymentPlan(db.Model):
    """An approved plan to pay the overdue amount in instalments; tracked like a schedule."""
    __tablename__ = "repayment_plans"
    id = db.Column(db.Integer, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False, index=True)
    instance_id = db.Column(db.Integer, db.ForeignKey("process_instances.id"))
    total = db.Column(db.Numeric(18, 2), nullable=False)  # the overdue amount when proposed
    reason = db.Column(db.Text, nullable=False, default="")
    proposed_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    approved_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    approved_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    status = db.Column(db.String(10), nullable=False, default="active")  # active|completed|broken
    paid_since_approval = db.Column(db.Numeric(18, 2), nullable=False, default=0)
    ended_at = db.Column(db.DateTime(timezone=True))
    instalments = db.relationship("RepaymentPlanInstalment", order_by="RepaymentPlanInstalment.seq",
                                  cascade="all, delete-orphan")


class RepaymentPlanInstalment(db.Model):
    __tablename__ = "repayment_plan_instalments"
    __table_args__ = (db.UniqueConstraint("plan_id", "seq"),)
    id = db.Column(db.Integer, primary_key=True)
    plan_id = db.Column(db.Integer, db.ForeignKey("repayment_plans.id"), nullable=False,
                        index=True)
    seq = db.Column(db.Integer, nullable=False)
    due_on = db.Column(db.Date, nullable=False)
    amount = db.Column(db.Numeric(18, 2), nullable=False)
    status = db.Column(db.String(10), nullable=False, default="pending")  # pending|kept|missed
    checked_at = db.Column(db.DateTime(timezone=True))
