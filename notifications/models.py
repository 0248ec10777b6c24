"""The notification outbox: messages are written in the case's transaction, sent later."""
from extensions import db
from workflows.clock import now


class Notification(db.Model):
    __tablename__ = "notifications"
    __table_args__ = (db.Index("ix_notifications_due", "status", "next_attempt_at"),)
    id = db.Column(db.Integer, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), index=True)
    channel = db.Column(db.String(20), nullable=False, default="sms")
    recipient = db.Column(db.String(80), nullable=False)
    body = db.Column(db.Text, nullable=False)
    status = db.Column(db.String(10), nullable=False, default="pending")  # pending|sent|failed
    attempts = db.Column(db.Integer, nullable=False, default=0)
    next_attempt_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    last_error = db.Column(db.Text)
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    sent_at = db.Column(db.DateTime(timezone=True))
