"""The append-only audit log. No code path updates or deletes a row."""
from extensions import db
from workflows.clock import now


class AuditEvent(db.Model):
    __tablename__ = "audit_events"
    id = db.Column(db.Integer, primary_key=True)
    at = db.Column(db.DateTime(timezone=True), nullable=False, default=now, index=True)
    actor_id = db.Column(db.Integer, db.ForeignKey("users.id"), index=True)
    action = db.Column(db.String(60), nullable=False, index=True)
    case_id = db.Column(db.Integer, db.ForeignKey("loans.id"), index=True)
    instance_id = db.Column(db.Integer, db.ForeignKey("process_instances.id"))
    task_id = db.Column(db.Integer, db.ForeignKey("human_tasks.id"))
    data = db.Column(db.JSON, nullable=False, default=dict)
    prev_hash = db.Column(db.String(64), nullable=False)
    hash = db.Column(db.String(64), nullable=False, unique=True)
    actor = db.relationship("User")
