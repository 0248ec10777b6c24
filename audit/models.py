"""The append-only audit log. No code path updates or deletes a row of `audit_events`,
`audit_chain`, `audit_anchors` or `audit_legacy_seals`; `audit_chain_queue` is the chainer's
work list (see audit/chaining.py)."""
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
    # Events written before migration 0013 are chained in the row: prev_hash is the hash of
    # the event before (by id) and nonce is NULL. From 0013 an event carries its own MAC in
    # `hash` (over a random nonce and its fields) and no prev_hash; its link in the chain is
    # its row in `audit_chain`.
    prev_hash = db.Column(db.String(64))
    hash = db.Column(db.String(64), nullable=False, unique=True)
    nonce = db.Column(db.String(32))
    actor = db.relationship("User")


class AuditChainLink(db.Model):
    """One link of the chain, in commit order: an HMAC (chain sub-key) over the previous
    link's hash, the position, the event id and the event's own MAC. The first link follows
    the last event chained in the row (before 0013), or GENESIS."""
    __tablename__ = "audit_chain"
    position = db.Column(db.Integer, primary_key=True, autoincrement=False)
    event_id = db.Column(db.Integer, db.ForeignKey("audit_events.id"), nullable=False,
                         unique=True)
    prev_hash = db.Column(db.String(64), nullable=False)
    hash = db.Column(db.String(64), nullable=False)


class AuditChainQueue(db.Model):
    """Events committed and not chained yet, filled by a database trigger on audit_events."""
    __tablename__ = "audit_chain_queue"
    event_id = db.Column(db.Integer, primary_key=True, autoincrement=False)
    queued_at = db.Column(db.DateTime(timezone=True), nullable=False,
                          server_default=db.text("CURRENT_TIMESTAMP"))


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
