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


class AuditAnchor(db.Model):
    """A copy of each anchor of the chain head written to the anchor file (the file is the
    authority: it lives outside the database). `mac` is the anchor's HMAC with the audit key."""
    __tablename__ = "audit_anchors"
    id = db.Column(db.Integer, primary_key=True)
    at = db.Column(db.DateTime(timezone=True), nullable=False)
    event_count = db.Column(db.Integer, nullable=False)
    last_event_id = db.Column(db.Integer)
    last_hash = db.Column(db.String(64))
    mac = db.Column(db.String(64), nullable=False)


class AuditLegacySeal(db.Model):
    """Written once by migration 0006 when the database already held events hashed with plain
    SHA-256: the last of them, their count and an HMAC over both with the audit key. Events up
    to `last_event_id` are checked as plain SHA-256, every later event as HMAC; without a valid
    seal every event must carry an HMAC, so deleting or editing the seal is detected."""
    __tablename__ = "audit_legacy_seals"
    id = db.Column(db.Integer, primary_key=True)
    sealed_at = db.Column(db.DateTime(timezone=True), nullable=False)
    last_event_id = db.Column(db.Integer, nullable=False)
    last_hash = db.Column(db.String(64), nullable=False)
    event_count = db.Column(db.Integer, nullable=False)
    mac = db.Column(db.String(64), nullable=False)
